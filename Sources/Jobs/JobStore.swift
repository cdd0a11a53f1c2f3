import Diagnostics
import Foundation

/// Which jobs a List asks for, in which order, from where.
public struct JobQuery: Sendable, Equatable {
    public enum SortKey: String, Sendable {
        case name = "Name"
        case creationTime = "CreationTime"
        case status = "Status"
    }

    /// Jobs belong to the account that created them; List sees only its own.
    public var account: String
    public var nameContains: String?
    public var status: JobStatus?
    public var creationTimeAfter: Date?
    public var creationTimeBefore: Date?
    public var lastModifiedTimeAfter: Date?
    public var lastModifiedTimeBefore: Date?
    public var sortBy: SortKey = .creationTime
    public var ascending = false
    /// Continue after this position (from a NextToken).
    public var after: JobCursor?
    public var limit = 10

    public init(account: String) { self.account = account }
}

/// A position in a sorted listing: the sort key's value and the name (unique) of the last job returned.
public struct JobCursor: Codable, Sendable, Equatable {
    public var key: String
    public var name: String
}

/// Where jobs live. SQLite is the default; a PostgreSQL store implements the
/// same protocol. Every mutation is one transaction, safe between processes.
public protocol JobStore: Sendable {
    /// Adds a new job; `ResourceInUse` when the name is taken, `ResourceLimitExceeded` when its account
    /// already has `activeLimit` jobs that have not ended.
    func insert(_ record: JobRecord, activeLimit: Int) throws
    func fetch(account: String, name: String) throws -> JobRecord?
    /// One page of jobs and the cursor after its last one (nil at the end).
    func list(_ query: JobQuery) throws -> (jobs: [JobRecord], next: JobCursor?)
    /// Applies `change` to a job inside one transaction and returns the result; nil when there is no such job.
    @discardableResult
    func update(account: String, name: String, _ change: (inout JobRecord) throws -> Void) throws -> JobRecord?
    func delete(account: String, name: String) throws
    /// Claims the oldest queued job (or the named one) for `owner` until `now + lease`.
    func claim(owner: String, name: String?, now: Date, lease: TimeInterval) throws -> JobRecord?
    /// Jobs whose lease ran out (their runner died): re-queued once, then FAILED.
    func reapExpired(now: Date) throws -> [String]
    /// Puts a job this owner holds back in the queue (a server shutting down).
    func requeue(account: String, name: String, owner: String, now: Date) throws

    /// Runner processes announce themselves so a CLI knows whether to start one.
    func heartbeatWorker(id: String, now: Date) throws
    func removeWorker(id: String) throws
    /// Records that a runner is being started unless one was within `within` seconds; true when the caller should.
    func reserveRunnerStart(now: Date, within: TimeInterval) throws -> Bool
    func queuedCount() throws -> Int
}

extension JobQuery.SortKey {
    /// The column a store sorts on.
    var column: String {
        switch self {
        case .name: return "name"
        case .creationTime: return "creation_time"
        case .status: return "status"
        }
    }
}

extension JobQuery {
    /// The page of `rows` (fetched with a limit one larger than the page) and the cursor after it.
    func page(of rows: [JobRecord]) -> (jobs: [JobRecord], next: JobCursor?) {
        let page = Array(rows.prefix(limit))
        guard rows.count > limit, let last = page.last else { return (page, nil) }
        let key: String
        switch sortBy {
        case .name: key = last.name
        case .creationTime: key = String(last.creationTime.timeIntervalSince1970)
        case .status: key = last.status.rawValue
        }
        return (page, JobCursor(key: key, name: last.name))
    }
}

extension JobRecord {
    /// A runner takes the job until `now + lease`.
    mutating func claim(owner: String, now: Date, lease: TimeInterval) {
        attempts += 1
        leaseOwner = owner
        leaseExpires = now.addingTimeInterval(lease)
        transition(to: .inProgress, at: now)
    }

    /// The runner `owner` gives the job back (it is shutting down): queued again, or stopped if asked to.
    mutating func requeue(owner: String, now: Date) {
        guard leaseOwner == owner, !status.isFinal else { return }
        attempts = max(0, attempts - 1)
        leaseOwner = nil
        leaseExpires = nil
        stages = []
        if stopRequested {
            end(.stopped, reason: "", at: now)
        } else {
            transition(to: .starting, at: now)
        }
    }

    /// The reap rule every store shares: a job whose runner was lost runs again once, then fails.
    public mutating func reapAfterLostRunner(now: Date) {
        let lost = leaseOwner ?? "unknown"
        if status == .stopping || stopRequested {
            end(.stopped, reason: "", at: now)
        } else if attempts < 2 {
            leaseOwner = nil
            leaseExpires = nil
            stages = []
            transition(to: .starting, at: now)
        } else {
            end(
                .failed,
                reason: "ServerError: WorkerLost: the runner \(lost) stopped renewing its lease on attempt "
                    + "\(attempts); the job was already retried once",
                at: now)
        }
    }
}

/// Which job store a process uses: `--store`, else `$KILN_STORE`, else the
/// SQLite database `$KILN_HOME/jobs.sqlite`. A `postgres://` (or
/// `postgresql://`) URL selects PostgreSQL; `sqlite:PATH` or a plain path selects SQLite.
public enum JobStoreLocation {
    /// The store named by `text` (or the environment), and a line saying which it is.
    public static func open(_ text: String?, home: String) throws -> (store: any JobStore, description: String) {
        let chosen = text ?? ProcessInfo.processInfo.environment["KILN_STORE"].flatMap { $0.isEmpty ? nil : $0 }
        guard let chosen else {
            let path = home + "/jobs.sqlite"
            return (try SQLiteJobStore(path: path), "SQLite \(path)")
        }
        if chosen.hasPrefix("postgres://") || chosen.hasPrefix("postgresql://") {
            let store = try PostgresJobStore(url: chosen)
            return (store, "PostgreSQL \(store.displayURL)")
        }
        var path = chosen
        if path.hasPrefix("sqlite://") {
            path = String(path.dropFirst("sqlite://".count))
        } else if path.hasPrefix("sqlite:") {
            path = String(path.dropFirst("sqlite:".count))
        }
        guard !path.isEmpty, !path.contains("://") else {
            throw APIError(
                .validation, "job store \(quoted(chosen)) is not a postgres:// URL, sqlite:PATH or a file path")
        }
        return (try SQLiteJobStore(path: path), "SQLite \(path)")
    }
}

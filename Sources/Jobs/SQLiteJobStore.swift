import Diagnostics
import Foundation
import GRDB

/// The default job store: one SQLite database in WAL mode under `$KILN_HOME`,
/// shared safely by every CLI, server and runner process on the machine.
/// Each job is a row with the columns List filters and sorts on, plus the
/// whole record as JSON; every change is one IMMEDIATE transaction.
public final class SQLiteJobStore: JobStore {
    private let pool: DatabasePool
    public let path: String

    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        // Several processes write: wait for each other instead of failing with SQLITE_BUSY.
        configuration.busyMode = .timeout(30)
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        do {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            // Processes opening a new store at once would each see it unmigrated: one migrates at a time.
            let lock = open(path + ".migration-lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard lock >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            defer { close(lock) }
            flock(lock, LOCK_EX)
            defer { flock(lock, LOCK_UN) }
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw APIError(.internalFailure, "cannot open the job store \(path): \(error)")
        }
    }

    /// Schema versions, applied in order once each; never edit a shipped one, add the next.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: jobs, workers, runner starts") { db in
            try db.execute(
                sql: """
                    CREATE TABLE jobs (
                        name TEXT PRIMARY KEY NOT NULL,
                        status TEXT NOT NULL,
                        creation_time REAL NOT NULL,
                        last_modified_time REAL NOT NULL,
                        lease_expires REAL,
                        record TEXT NOT NULL
                    );
                    CREATE INDEX jobs_by_status ON jobs (status, creation_time);
                    CREATE INDEX jobs_by_creation ON jobs (creation_time, name);
                    CREATE TABLE workers (id TEXT PRIMARY KEY NOT NULL, heartbeat REAL NOT NULL);
                    CREATE TABLE runner_starts (id INTEGER PRIMARY KEY CHECK (id = 1), at REAL NOT NULL);
                    """)
        }
        migrator.registerMigration("v2: jobs belong to an account; names are unique per account") { db in
            try db.execute(
                sql: """
                    CREATE TABLE jobs_v2 (
                        account TEXT NOT NULL,
                        name TEXT NOT NULL,
                        status TEXT NOT NULL,
                        creation_time REAL NOT NULL,
                        last_modified_time REAL NOT NULL,
                        lease_expires REAL,
                        record TEXT NOT NULL,
                        PRIMARY KEY (account, name)
                    )
                    """)
            for row in try Row.fetchAll(db, sql: "SELECT * FROM jobs") {
                let record: String = row["record"]
                let account = try decoder.decode(JobRecord.self, from: Data(record.utf8)).account
                try db.execute(
                    sql: """
                        INSERT INTO jobs_v2 (account, name, status, creation_time, last_modified_time, lease_expires, record)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        account, row["name"], row["status"], row["creation_time"], row["last_modified_time"],
                        row["lease_expires"], record,
                    ])
            }
            try db.execute(
                sql: """
                    DROP TABLE jobs;
                    ALTER TABLE jobs_v2 RENAME TO jobs;
                    CREATE INDEX jobs_by_status ON jobs (status, creation_time);
                    CREATE INDEX jobs_by_account_creation ON jobs (account, creation_time, name);
                    CREATE INDEX jobs_by_lease ON jobs (lease_expires) WHERE lease_expires IS NOT NULL;
                    """)
        }
        return migrator
    }

    private static let encoder = JSONEncoder()
    private static let decoder = JSONDecoder()

    /// Decoded records by their JSON text: a job polled many times is decoded once per change.
    private let decoded = RecordCache()
    /// When reapExpired last looked (by its `now`): it looks at most twice a second.
    private let lastReap = LockedDate()

    private func decode(_ text: String) throws -> JobRecord {
        if let record = decoded[text] { return record }
        let record = try Self.decoder.decode(JobRecord.self, from: Data(text.utf8))
        decoded[text] = record
        return record
    }

    private func write(_ record: JobRecord, _ db: Database, insert: Bool) throws {
        let json = String(decoding: try Self.encoder.encode(record), as: UTF8.self)
        let arguments: StatementArguments = [
            record.status.rawValue, record.creationTime.timeIntervalSince1970,
            record.lastModifiedTime.timeIntervalSince1970, record.leaseExpires?.timeIntervalSince1970, json,
            record.account, record.name,
        ]
        if insert {
            try db.execute(
                sql: """
                    INSERT INTO jobs (status, creation_time, last_modified_time, lease_expires, record, account, name)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: arguments)
        } else {
            try db.execute(
                sql: """
                    UPDATE jobs SET status = ?, creation_time = ?, last_modified_time = ?, lease_expires = ?,
                    record = ? WHERE account = ? AND name = ?
                    """, arguments: arguments)
        }
    }

    private func writeTransaction<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                return .commit
            }
            return result!
        }
    }

    private func fetch(_ account: String, _ name: String, _ db: Database) throws -> JobRecord? {
        try String.fetchOne(
            db, sql: "SELECT record FROM jobs WHERE account = ? AND name = ?", arguments: [account, name]
        ).map(decode)
    }

    public func insert(_ record: JobRecord, activeLimit: Int) throws {
        try writeTransaction { db in
            if try fetch(record.account, record.name, db) != nil {
                throw APIError.alreadyExists(record.name)
            }
            let active =
                try Int.fetchOne(
                    db,
                    sql:
                        "SELECT count(*) FROM jobs WHERE account = ? AND status IN ('STARTING', 'INPROGRESS', 'STOPPING')",
                    arguments: [record.account]) ?? 0
            if active >= activeLimit {
                throw APIError.activeJobLimit(activeLimit, active: active)
            }
            try write(record, db, insert: true)
        }
    }

    public func fetch(account: String, name: String) throws -> JobRecord? {
        try pool.read { db in try fetch(account, name, db) }
    }

    public func list(_ query: JobQuery) throws -> (jobs: [JobRecord], next: JobCursor?) {
        var conditions = ["account = ?"]
        var arguments: [any DatabaseValueConvertible & Sendable] = [query.account]
        if let text = query.nameContains {
            conditions.append("instr(lower(name), lower(?)) > 0")
            arguments.append(text)
        }
        if let status = query.status {
            conditions.append("status = ?")
            arguments.append(status.rawValue)
        }
        let times: [(String, String, Date?)] = [
            ("creation_time", ">", query.creationTimeAfter), ("creation_time", "<", query.creationTimeBefore),
            ("last_modified_time", ">", query.lastModifiedTimeAfter),
            ("last_modified_time", "<", query.lastModifiedTimeBefore),
        ]
        for (column, comparison, date) in times {
            if let date {
                conditions.append("\(column) \(comparison) ?")
                arguments.append(date.timeIntervalSince1970)
            }
        }
        let column = query.sortBy.column
        let direction = query.ascending ? "ASC" : "DESC"
        if let after = query.after {
            conditions.append("(\(column), name) \(query.ascending ? ">" : "<") (?, ?)")
            if query.sortBy == .creationTime {
                arguments.append(Double(after.key) ?? 0)
            } else {
                arguments.append(after.key)
            }
            arguments.append(after.name)
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql =
            "SELECT record FROM jobs \(whereClause) ORDER BY \(column) \(direction), name \(direction) LIMIT \(query.limit + 1)"
        let rows = try pool.read { db in
            try String.fetchAll(db, sql: sql, arguments: StatementArguments(arguments)).map(decode)
        }
        return query.page(of: rows)
    }

    @discardableResult
    public func update(account: String, name: String, _ change: (inout JobRecord) throws -> Void) throws
        -> JobRecord?
    {
        try writeTransaction { db in
            guard var record = try fetch(account, name, db) else { return nil }
            try change(&record)
            try write(record, db, insert: false)
            return record
        }
    }

    public func delete(account: String, name: String) throws {
        try writeTransaction { db in
            try db.execute(sql: "DELETE FROM jobs WHERE account = ? AND name = ?", arguments: [account, name])
        }
    }

    public func requeue(account: String, name: String, owner: String, now: Date) throws {
        try update(account: account, name: name) { $0.requeue(owner: owner, now: now) }
    }

    public func claim(owner: String, name: String?, now: Date, lease: TimeInterval) throws -> JobRecord? {
        // Idle runners poll: see whether anything is queued before taking the write lock.
        guard try queuedCount() > 0 else { return nil }
        return try writeTransaction { db in
            let text: String?
            if let name {
                text = try String.fetchOne(
                    db, sql: "SELECT record FROM jobs WHERE name = ? AND status = 'STARTING' LIMIT 1", arguments: [name]
                )
            } else {
                text = try String.fetchOne(
                    db,
                    sql: "SELECT record FROM jobs WHERE status = 'STARTING' ORDER BY creation_time, name LIMIT 1")
            }
            guard var record = try text.map(decode) else { return nil }
            record.claim(owner: owner, now: now, lease: lease)
            try write(record, db, insert: false)
            return record
        }
    }

    public func reapExpired(now: Date) throws -> [String] {
        guard lastReap.advance(to: now, ifAtLeast: 0.5) else { return [] }
        // Most calls find nothing: look first without taking the write lock.
        let any = try pool.read { db in
            try Bool.fetchOne(
                db,
                sql: "SELECT 1 FROM jobs WHERE lease_expires IS NOT NULL AND lease_expires < ? LIMIT 1",
                arguments: [now.timeIntervalSince1970]) ?? false
        }
        guard any else { return [] }
        return try writeTransaction { db in
            let texts = try String.fetchAll(
                db,
                sql: """
                    SELECT record FROM jobs WHERE status IN ('INPROGRESS', 'STOPPING')
                    AND lease_expires IS NOT NULL AND lease_expires < ?
                    """, arguments: [now.timeIntervalSince1970])
            var names: [String] = []
            for text in texts {
                var record = try decode(text)
                record.reapAfterLostRunner(now: now)
                try write(record, db, insert: false)
                names.append(record.name)
            }
            return names
        }
    }

    public func heartbeatWorker(id: String, now: Date) throws {
        try writeTransaction { db in
            try db.execute(
                sql:
                    "INSERT INTO workers (id, heartbeat) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET heartbeat = excluded.heartbeat",
                arguments: [id, now.timeIntervalSince1970])
        }
    }

    public func removeWorker(id: String) throws {
        try writeTransaction { db in
            try db.execute(sql: "DELETE FROM workers WHERE id = ?", arguments: [id])
            // A runner that ends frees the next CLI to start one at once.
            try db.execute(sql: "DELETE FROM runner_starts")
        }
    }

    public func reserveRunnerStart(now: Date, within: TimeInterval) throws -> Bool {
        try writeTransaction { db in
            let live =
                try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM workers WHERE heartbeat > ?",
                    arguments: [now.timeIntervalSince1970 - within]) ?? 0
            let last = try Double.fetchOne(db, sql: "SELECT at FROM runner_starts WHERE id = 1")
            if live > 0 { return false }
            if let last, last > now.timeIntervalSince1970 - within { return false }
            try db.execute(
                sql: "INSERT INTO runner_starts (id, at) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET at = excluded.at",
                arguments: [now.timeIntervalSince1970])
            return true
        }
    }

    public func queuedCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM jobs WHERE status = 'STARTING'") ?? 0 }
    }
}

/// A small map from a record's JSON text to the decoded record.
final class RecordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var records: [String: JobRecord] = [:]

    subscript(text: String) -> JobRecord? {
        get { lock.withLock { records[text] } }
        set {
            lock.withLock {
                if records.count >= 4096 { records.removeAll(keepingCapacity: true) }
                records[text] = newValue
            }
        }
    }
}

/// A date that moves forward only when far enough ahead.
final class LockedDate: @unchecked Sendable {
    private let lock = NSLock()
    private var date = Date.distantPast

    /// Moves to `now` and says true when `now` is at least `interval` past the last move (or before it).
    func advance(to now: Date, ifAtLeast interval: TimeInterval) -> Bool {
        lock.withLock {
            let elapsed = now.timeIntervalSince(date)
            guard elapsed >= interval || elapsed < 0 else { return false }
            date = now
            return true
        }
    }
}

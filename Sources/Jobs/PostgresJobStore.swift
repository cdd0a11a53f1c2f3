import Diagnostics
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO

/// The job store a fleet shares: PostgreSQL, reached with postgres-nio.
/// Same rows as the SQLite store (the List columns plus the whole record as
/// JSON); workers claim with `FOR UPDATE SKIP LOCKED`, so many machines take
/// jobs from one queue without waiting on each other or taking a job twice.
/// The protocol is synchronous: each call waits for its queries on a small
/// pool of connections served by an event loop of the store's own.
public final class PostgresJobStore: JobStore {
    public let url: String
    /// The URL with its password masked, for logs and `kiln config`.
    public let displayURL: String
    private let connections: ConnectionPool
    private let decoded = RecordCache()
    private let lastReap = LockedDate()

    public init(url: String, maximumConnections: Int = 4) throws {
        let configuration = try Self.configuration(parsing: url)
        self.url = url
        displayURL = Self.masked(url)
        connections = ConnectionPool(configuration: configuration, maximum: maximumConnections)
        do {
            try migrate()
        } catch let error as APIError {
            throw APIError(.internalFailure, "cannot open the job store \(displayURL): \(error.message)")
        }
    }

    deinit { connections.shutdown() }

    // MARK: URL

    /// `postgres://user:password@host:port/database?sslmode=disable|require`.
    static func configuration(parsing text: String) throws -> PostgresConnection.Configuration {
        guard let url = URLComponents(string: text), ["postgres", "postgresql"].contains(url.scheme ?? ""),
            let host = url.host, !host.isEmpty
        else {
            throw APIError(
                .validation,
                "\(masked(text)) is not a PostgreSQL URL of the form postgres://user:password@host:port/database")
        }
        let user = url.user ?? ProcessInfo.processInfo.environment["USER"] ?? "postgres"
        let database = String(url.path.drop(while: { $0 == "/" }))
        var tls = PostgresConnection.Configuration.TLS.disable
        switch url.queryItems?.first(where: { $0.name == "sslmode" })?.value {
        case nil, "disable", "allow", "prefer":
            break
        case "require":
            do {
                tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            } catch {
                throw APIError(.internalFailure, "cannot set up TLS for the job store: \(error)")
            }
        case let other?:
            throw APIError(.validation, "sslmode=\(other) is not one of disable, require")
        }
        return PostgresConnection.Configuration(
            host: host, port: url.port ?? 5432, username: user, password: url.password,
            database: database.isEmpty ? user : database, tls: tls)
    }

    static func masked(_ text: String) -> String {
        guard var url = URLComponents(string: text), url.password != nil else { return text }
        url.password = "****"
        return url.string ?? text
    }

    // MARK: Queries

    /// Runs one query, waiting at most `queryTimeout`: a server that went away mid-query must not hang the caller.
    private func run(_ connection: PostgresConnection, _ query: PostgresQuery) throws -> PostgresQueryResult {
        let answer = connection.eventLoop.makePromise(of: PostgresQueryResult.self)
        connection.query(query, logger: connections.logger).cascade(to: answer)
        let timeout = connection.eventLoop.scheduleTask(in: .seconds(Self.queryTimeout)) {
            answer.fail(QueryTimedOut())
        }
        defer { timeout.cancel() }
        do {
            return try answer.futureResult.wait()
        } catch is QueryTimedOut {
            throw QueryTimedOut()
        } catch let error as PSQLError {
            if error.serverInfo?[.sqlState] == PostgresError.Code.uniqueViolation.raw {
                throw UniqueViolation()
            }
            let message = error.serverInfo?[.message] ?? "\(error.code)"
            throw APIError(.internalFailure, "job store query failed: \(message)")
        }
    }

    private func records(_ result: PostgresQueryResult) throws -> [JobRecord] {
        try result.map { row in try decode(try row.decode(String.self)) }
    }

    private func decode(_ text: String) throws -> JobRecord {
        if let record = decoded[text] { return record }
        let record = try JSONDecoder().decode(JobRecord.self, from: Data(text.utf8))
        decoded[text] = record
        return record
    }

    private func write(_ record: JobRecord, _ connection: PostgresConnection, insert: Bool) throws {
        let json = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
        let (status, created, modified, lease) = (
            record.status.rawValue, record.creationTime.timeIntervalSince1970,
            record.lastModifiedTime.timeIntervalSince1970, record.leaseExpires?.timeIntervalSince1970
        )
        if insert {
            _ = try run(
                connection,
                """
                INSERT INTO kiln_jobs (account, name, status, creation_time, last_modified_time, lease_expires, record)
                VALUES (\(record.account), \(record.name), \(status), \(created), \(modified), \(lease), \(json))
                """)
        } else {
            _ = try run(
                connection,
                """
                UPDATE kiln_jobs SET status = \(status), creation_time = \(created), last_modified_time = \(modified),
                lease_expires = \(lease), record = \(json) WHERE account = \(record.account) AND name = \(record.name)
                """)
        }
    }

    private func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try connections.withConnection { connection in
            _ = try run(connection, "BEGIN")
            do {
                let result = try body(connection)
                _ = try run(connection, "COMMIT")
                return result
            } catch {
                _ = try? run(connection, "ROLLBACK")
                throw error
            }
        }
    }

    /// Schema versions, applied in order once each under an advisory lock; never edit a shipped one.
    private func migrate() throws {
        let versions: [String] = [
            """
            CREATE TABLE kiln_jobs (
                account TEXT COLLATE "C" NOT NULL,
                name TEXT COLLATE "C" NOT NULL,
                status TEXT COLLATE "C" NOT NULL,
                creation_time DOUBLE PRECISION NOT NULL,
                last_modified_time DOUBLE PRECISION NOT NULL,
                lease_expires DOUBLE PRECISION,
                record TEXT NOT NULL,
                PRIMARY KEY (account, name)
            );
            CREATE INDEX kiln_jobs_by_status ON kiln_jobs (status, creation_time, name);
            CREATE INDEX kiln_jobs_by_account_creation ON kiln_jobs (account, creation_time, name);
            CREATE INDEX kiln_jobs_by_lease ON kiln_jobs (lease_expires) WHERE lease_expires IS NOT NULL;
            CREATE TABLE kiln_workers (id TEXT PRIMARY KEY, heartbeat DOUBLE PRECISION NOT NULL);
            CREATE TABLE kiln_runner_starts (id INTEGER PRIMARY KEY CHECK (id = 1), at DOUBLE PRECISION NOT NULL);
            """
        ]
        try transaction { connection in
            // One process migrates at a time; the others wait here and then find nothing to do.
            _ = try run(connection, "SELECT pg_advisory_xact_lock(7405221)")
            _ = try run(connection, "CREATE TABLE IF NOT EXISTS kiln_schema (version INTEGER NOT NULL)")
            let current =
                try run(connection, "SELECT coalesce(max(version), 0) FROM kiln_schema").first
                .map { try $0.decode(Int.self) } ?? 0
            for (index, sql) in versions.enumerated() where index + 1 > current {
                for statement in sql.split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                    _ = try run(connection, PostgresQuery(unsafeSQL: String(statement)))
                }
                _ = try run(connection, "INSERT INTO kiln_schema (version) VALUES (\(index + 1))")
            }
        }
    }

    // MARK: JobStore

    public func insert(_ record: JobRecord, activeLimit: Int) throws {
        do {
            try transaction { connection in
                // Inserts for one account queue here, so two cannot both pass the limit check.
                _ = try run(connection, "SELECT pg_advisory_xact_lock(hashtext(\(record.account)))")
                let active =
                    try run(
                        connection,
                        """
                        SELECT count(*) FROM kiln_jobs WHERE account = \(record.account)
                        AND status IN ('STARTING', 'INPROGRESS', 'STOPPING')
                        """
                    ).first.map { try $0.decode(Int.self) } ?? 0
                if active >= activeLimit {
                    throw APIError.activeJobLimit(activeLimit, active: active)
                }
                try write(record, connection, insert: true)
            }
        } catch is UniqueViolation {
            throw APIError.alreadyExists(record.name)
        }
    }

    public func fetch(account: String, name: String) throws -> JobRecord? {
        try connections.withConnection { connection in
            try records(
                try run(connection, "SELECT record FROM kiln_jobs WHERE account = \(account) AND name = \(name)")
            ).first
        }
    }

    public func list(_ query: JobQuery) throws -> (jobs: [JobRecord], next: JobCursor?) {
        var bindings = PostgresBindings()
        func bind(_ value: some PostgresNonThrowingEncodable) -> String {
            bindings.append(value)
            return "$\(bindings.count)"
        }
        var conditions = ["account = \(bind(query.account))"]
        if let text = query.nameContains { conditions.append("strpos(lower(name), lower(\(bind(text)))) > 0") }
        if let status = query.status { conditions.append("status = \(bind(status.rawValue))") }
        let times: [(String, String, Date?)] = [
            ("creation_time", ">", query.creationTimeAfter), ("creation_time", "<", query.creationTimeBefore),
            ("last_modified_time", ">", query.lastModifiedTimeAfter),
            ("last_modified_time", "<", query.lastModifiedTimeBefore),
        ]
        for (column, comparison, date) in times {
            if let date { conditions.append("\(column) \(comparison) \(bind(date.timeIntervalSince1970))") }
        }
        let column = query.sortBy.column
        let direction = query.ascending ? "ASC" : "DESC"
        if let after = query.after {
            let key = query.sortBy == .creationTime ? bind(Double(after.key) ?? 0) : bind(after.key)
            conditions.append("(\(column), name) \(query.ascending ? ">" : "<") (\(key), \(bind(after.name)))")
        }
        let sql = """
            SELECT record FROM kiln_jobs WHERE \(conditions.joined(separator: " AND "))
            ORDER BY \(column) \(direction), name \(direction) LIMIT \(query.limit + 1)
            """
        let rows = try connections.withConnection { connection in
            try records(try run(connection, PostgresQuery(unsafeSQL: sql, binds: bindings)))
        }
        return query.page(of: rows)
    }

    @discardableResult
    public func update(account: String, name: String, _ change: (inout JobRecord) throws -> Void) throws
        -> JobRecord?
    {
        try transaction { connection in
            let query: PostgresQuery =
                "SELECT record FROM kiln_jobs WHERE account = \(account) AND name = \(name) FOR UPDATE"
            guard var record = try records(try run(connection, query)).first else { return nil }
            try change(&record)
            try write(record, connection, insert: false)
            return record
        }
    }

    public func delete(account: String, name: String) throws {
        try connections.withConnection { connection in
            _ = try run(connection, "DELETE FROM kiln_jobs WHERE account = \(account) AND name = \(name)")
        }
    }

    public func requeue(account: String, name: String, owner: String, now: Date) throws {
        try update(account: account, name: name) { $0.requeue(owner: owner, now: now) }
    }

    public func claim(owner: String, name: String?, now: Date, lease: TimeInterval) throws -> JobRecord? {
        guard try queuedCount() > 0 else { return nil }
        return try transaction { connection in
            let query: PostgresQuery
            if let name {
                query = """
                    SELECT record FROM kiln_jobs WHERE name = \(name) AND status = 'STARTING'
                    LIMIT 1 FOR UPDATE SKIP LOCKED
                    """
            } else {
                query = """
                    SELECT record FROM kiln_jobs WHERE status = 'STARTING' ORDER BY creation_time, name
                    LIMIT 1 FOR UPDATE SKIP LOCKED
                    """
            }
            guard var record = try records(try run(connection, query)).first else { return nil }
            record.claim(owner: owner, now: now, lease: lease)
            try write(record, connection, insert: false)
            return record
        }
    }

    public func reapExpired(now: Date) throws -> [String] {
        guard lastReap.advance(to: now, ifAtLeast: 0.5) else { return [] }
        let time = now.timeIntervalSince1970
        return try transaction { connection in
            let expired = try records(
                try run(
                    connection,
                    """
                    SELECT record FROM kiln_jobs WHERE status IN ('INPROGRESS', 'STOPPING')
                    AND lease_expires IS NOT NULL AND lease_expires < \(time) FOR UPDATE SKIP LOCKED
                    """))
            return try expired.map { record in
                var record = record
                record.reapAfterLostRunner(now: now)
                try write(record, connection, insert: false)
                return record.name
            }
        }
    }

    public func heartbeatWorker(id: String, now: Date) throws {
        let time = now.timeIntervalSince1970
        try connections.withConnection { connection in
            _ = try run(
                connection,
                """
                INSERT INTO kiln_workers (id, heartbeat) VALUES (\(id), \(time))
                ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat
                """)
        }
    }

    public func removeWorker(id: String) throws {
        try transaction { connection in
            _ = try run(connection, "DELETE FROM kiln_workers WHERE id = \(id)")
            _ = try run(connection, "DELETE FROM kiln_runner_starts")
        }
    }

    public func reserveRunnerStart(now: Date, within: TimeInterval) throws -> Bool {
        let time = now.timeIntervalSince1970
        let since = time - within
        return try transaction { connection in
            _ = try run(connection, "SELECT pg_advisory_xact_lock(7405222)")
            let live =
                try run(connection, "SELECT count(*) FROM kiln_workers WHERE heartbeat > \(since)").first
                .map { try $0.decode(Int.self) } ?? 0
            let last = try run(connection, "SELECT at FROM kiln_runner_starts WHERE id = 1").first
                .map { try $0.decode(Double.self) }
            if live > 0 { return false }
            if let last, last > since { return false }
            _ = try run(
                connection,
                """
                INSERT INTO kiln_runner_starts (id, at) VALUES (1, \(time))
                ON CONFLICT (id) DO UPDATE SET at = excluded.at
                """)
            return true
        }
    }

    public func queuedCount() throws -> Int {
        try connections.withConnection { connection in
            try run(connection, "SELECT count(*) FROM kiln_jobs WHERE status = 'STARTING'").first
                .map { try $0.decode(Int.self) } ?? 0
        }
    }
}

private struct UniqueViolation: Error {}

/// A query that got no answer in time; its connection is dropped, not reused.
struct QueryTimedOut: Error {}

extension PostgresJobStore {
    /// Seconds a query may take; every query Kiln sends is small, so this only ends waits on a dead server.
    static let queryTimeout: Int64 = 30
}

/// A few PostgreSQL connections shared by the store's callers: a caller takes an idle one, opens a new one
/// while under the maximum, or waits. A connection that broke is dropped and replaced on demand.
private final class ConnectionPool: @unchecked Sendable {
    let logger = Logger(label: "kiln.postgres")
    private let configuration: PostgresConnection.Configuration
    private let maximum: Int
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let condition = NSCondition()
    private var idle: [PostgresConnection] = []
    private var open = 0
    private var nextID = 0

    init(configuration: PostgresConnection.Configuration, maximum: Int) {
        self.configuration = configuration
        self.maximum = max(1, maximum)
    }

    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        let connection = try take()
        do {
            let result = try body(connection)
            give(connection)
            return result
        } catch is QueryTimedOut {
            give(connection, broken: true)
            throw APIError(
                .internalFailure,
                "the job store at \(configuration.host ?? "?"):\(configuration.port ?? 5432) did not answer within \(PostgresJobStore.queryTimeout) s"
            )
        } catch {
            give(connection)
            throw error
        }
    }

    private func take() throws -> PostgresConnection {
        condition.lock()
        while idle.isEmpty && open >= maximum { condition.wait() }
        if let connection = idle.popLast() {
            condition.unlock()
            return connection
        }
        open += 1
        nextID += 1
        let id = nextID
        condition.unlock()
        do {
            return try PostgresConnection.connect(
                on: group.next(), configuration: configuration, id: id, logger: logger
            ).wait()
        } catch {
            condition.lock()
            open -= 1
            condition.signal()
            condition.unlock()
            let detail = (error as? PSQLError).flatMap { $0.serverInfo?[.message] } ?? "\(error)"
            throw APIError(
                .internalFailure,
                "cannot connect to PostgreSQL at \(configuration.host ?? "?"):\(configuration.port ?? 5432): \(detail)")
        }
    }

    private func give(_ connection: PostgresConnection, broken: Bool = false) {
        if broken { connection.close().whenComplete { _ in } }
        condition.lock()
        if broken || connection.isClosed {
            open -= 1
        } else {
            idle.append(connection)
        }
        condition.signal()
        condition.unlock()
    }

    func shutdown() {
        condition.lock()
        let connections = idle
        idle = []
        condition.unlock()
        for connection in connections { try? connection.close().wait() }
        try? group.syncShutdownGracefully()
    }
}

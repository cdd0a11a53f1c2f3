import Foundation
import TestSupport
import Testing

@testable import Jobs

@Suite("job stores shared by several machines")
struct SharedStoreTests {
    /// A second handle on the fixture's store, as another machine would open it.
    static func secondHandle(_ fixture: Fixture) throws -> any JobStore {
        if let sqlite = fixture.store as? SQLiteJobStore { return try SQLiteJobStore(path: sqlite.path) }
        let postgres = try #require(fixture.store as? PostgresJobStore)
        return try PostgresJobStore(url: postgres.url)
    }

    @Test("three handles claiming at once take each of 60 jobs exactly once", arguments: StoreKind.available)
    func claimsAreExclusive(store kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        for index in 0..<60 {
            _ = try fixture.service.create(fixture.request("job-\(index)"))
            fixture.advance(0.001)
        }
        let stores = [fixture.store, try Self.secondHandle(fixture), try Self.secondHandle(fixture)]
        let now = fixture.time
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for (index, store) in stores.enumerated() {
                group.addTask {
                    var names: [String] = []
                    while let record = try store.claim(owner: "machine-\(index)", name: nil, now: now, lease: 60) {
                        names.append(record.name)
                    }
                    return names
                }
            }
            return try await group.reduce(into: [[String]]()) { $0.append($1) }
        }
        let all = claimed.flatMap { $0 }
        #expect(all.count == 60)
        #expect(Set(all) == Set((0..<60).map { "job-\($0)" }))
        #expect(try fixture.store.queuedCount() == 0)
    }

    @Test(
        "a Stop made through one handle reaches the runner that holds the job through another",
        arguments: StoreKind.available)
    func stopReachesOtherMachine(store kind: StoreKind) throws {
        let fixture = try Fixture(kind)
        _ = try fixture.service.create(fixture.request("remote"))
        let worker = try Self.secondHandle(fixture)
        let claimed = try #require(try worker.claim(owner: "far-away", name: nil, now: fixture.time, lease: 60))
        #expect(claimed.status == .inProgress)
        try fixture.service.stop(.init(compilationJobName: "remote"))
        let seen = try #require(try worker.fetch(account: claimed.account, name: "remote"))
        #expect(seen.stopRequested && seen.status == .stopping)
    }

    @Test("the account's active-job limit holds when two handles create at once", arguments: StoreKind.available)
    func limitUnderConcurrency(store kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        let other = try Self.secondHandle(fixture)
        let services = [fixture.service, JobService(store: other, region: "eu-west-1", account: "111122223333")]
        let created = try await withThrowingTaskGroup(of: Int.self) { group in
            for (index, service) in services.enumerated() {
                group.addTask {
                    var count = 0
                    for job in 0..<10 {
                        var service = service
                        service.activeJobLimit = 7
                        do {
                            _ = try service.create(fixture.request("h\(index)-\(job)"))
                            count += 1
                        } catch let error as APIError where error.code == .resourceLimitExceeded {}
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        #expect(created == 7)
    }
}

@Suite("choosing and reaching a job store")
struct StoreLocationTests {
    @Test("KILN_STORE and --store values: postgres URLs, sqlite:PATH, paths; anything else is refused")
    func locations() throws {
        let directory = try TemporaryDirectory()
        let (_, description) = try JobStoreLocation.open("sqlite:\(directory.path)/a.sqlite", home: directory.path)
        #expect(description == "SQLite \(directory.path)/a.sqlite")
        #expect(try JobStoreLocation.open(nil, home: directory.path).description.hasSuffix("/jobs.sqlite"))
        #expect(throws: APIError.self) { _ = try JobStoreLocation.open("mysql://db/kiln", home: directory.path) }
        #expect(PostgresJobStore.masked("postgres://u:secret@h:5/d") == "postgres://u:****@h:5/d")
    }

    @Test("an unreachable PostgreSQL server is one clear error, not a hang")
    func unreachable() throws {
        let started = Date()
        do {
            _ = try PostgresJobStore(url: "postgres://kiln@127.0.0.1:1/kiln")
            Issue.record("opened a store on a closed port")
        } catch let error as APIError {
            #expect(error.message.contains("cannot connect to PostgreSQL at 127.0.0.1:1"), "\(error.message)")
        }
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test(
        "scripts/test runs every store and object-store test: the servers it starts are there",
        .enabled(if: TestServices.required))
    func servicesPresent() throws {
        #expect(TestServices.postgres != nil, "KILN_TEST_POSTGRES is not set")
        #expect(TestServices.s3 != nil, "KILN_TEST_S3_ENDPOINT and its keys are not set")
    }
}

import Foundation
import GRDB
import ObjectStore
import Pipeline
import TestSupport
import Testing

@testable import Jobs

/// The job stores the store suite runs against: SQLite always, PostgreSQL when the test cluster is up.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite = "SQLite"
    case postgres = "PostgreSQL"

    var testDescription: String { rawValue }

    static var available: [StoreKind] {
        TestServices.postgres != nil || TestServices.required ? allCases : [.sqlite]
    }
}

/// A job service over a fresh store (a new SQLite file, or a new PostgreSQL database), with a clock the
/// test moves.
final class Fixture: @unchecked Sendable {
    let directory: TemporaryDirectory
    let store: any JobStore
    private let lock = NSLock()
    private var now = Date(timeIntervalSince1970: 1_800_000_000)

    init(_ kind: StoreKind = .sqlite) throws {
        directory = try TemporaryDirectory()
        switch kind {
        case .sqlite: store = try SQLiteJobStore(path: directory.path + "/jobs.sqlite")
        case .postgres: store = try PostgresJobStore(url: try TestServices.newPostgresDatabase())
        }
    }

    var service: JobService {
        JobService(store: store, region: "eu-west-1", account: "111122223333", clock: { [self] in self.time })
    }

    var time: Date { lock.withLock { now } }
    func advance(_ seconds: TimeInterval) { lock.withLock { now += seconds } }

    func request(
        _ name: String, model: String = repositoryRoot + "/models/digits-cnn/model.tar.gz",
        config: String? = #"{"image": [1,1,8,8]}"#, maxRuntime: Int? = 300
    ) -> CreateCompilationJobRequest {
        CreateCompilationJobRequest(
            compilationJobName: name, roleArn: "arn:aws:iam::111122223333:role/kiln-test",
            inputConfig: InputConfig(s3Uri: model, dataInputConfig: config, framework: "ONNX"),
            outputConfig: OutputConfig(s3OutputLocation: "s3://bucket/\(name)", targetDevice: "ml_c4"),
            stoppingCondition: StoppingCondition(maxRuntimeInSeconds: maxRuntime))
    }

    func environment() -> PipelineEnvironment {
        PipelineEnvironment(home: KilnHome(path: directory.path), workingDirectory: directory.path)
    }
}

func validationMessage(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as APIError {
        return error.code == .validation ? error.message : "\(error.code): \(error.message)"
    } catch {
        return "\(error)"
    }
}

@Suite("the compilation-job API over a job store")
struct JobServiceTests {
    @Test("validates every constrained member with AWS's messages", arguments: StoreKind.available)
    func validation(store kind: StoreKind) throws {
        let fixture = try Fixture(kind)
        let service = fixture.service
        var request = fixture.request("good-name-1")
        request.compilationJobName = "bad name"
        #expect(
            validationMessage { _ = try service.create(request) }
                == "1 validation error detected: Value 'bad name' at 'compilationJobName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
        )
        // Each bad member, alone, and the constraint named for it.
        let cases: [(String, (inout CreateCompilationJobRequest) -> Void)] = [
            (
                "at 'compilationJobName' failed to satisfy constraint: Member must have length less than or equal to 63",
                { $0.compilationJobName = String(repeating: "a", count: 64) }
            ),
            (
                "Value null at 'compilationJobName' failed to satisfy constraint: Member must not be null",
                { $0.compilationJobName = nil }
            ),
            (
                "at 'roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern",
                { $0.roleArn = "arn:aws:iam::12:role/x-but-long-enough" }
            ),
            (
                "at 'roleArn' failed to satisfy constraint: Member must have length greater than or equal to 20",
                { $0.roleArn = "short" }
            ),
            (
                "at 'inputConfig.framework' failed to satisfy constraint: Member must satisfy enum value set: [TENSORFLOW, KERAS",
                { $0.inputConfig?.framework = "onnx" }
            ),
            (
                "at 'inputConfig.s3Uri' failed to satisfy constraint: Member must satisfy regular expression pattern",
                { $0.inputConfig?.s3Uri = "ftp://x/y" }
            ),
            ("at 'inputConfig.frameworkVersion'", { $0.inputConfig?.frameworkVersion = "x" }),
            (
                "at 'outputConfig.targetDevice' failed to satisfy constraint: Member must satisfy enum value set",
                { $0.outputConfig?.targetDevice = "ml_c9" }
            ),
            (
                "at 'outputConfig.targetPlatform.arch'",
                { $0.outputConfig?.targetPlatform = TargetPlatform(os: "LINUX", arch: "RISCV") }
            ),
            (
                "at 'outputConfig.compilerOptions' failed to satisfy constraint: Member must have length greater than or equal to 3",
                { $0.outputConfig?.compilerOptions = "{}" }
            ),
            (
                "Value null at 'outputConfig' failed to satisfy constraint: Member must not be null",
                { $0.outputConfig = nil }
            ),
            ("Value null at 'stoppingCondition'", { $0.stoppingCondition = nil }),
            (
                "Value '0' at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy constraint: Member must have value greater than or equal to 1",
                { $0.stoppingCondition?.maxRuntimeInSeconds = 0 }
            ),
            ("at 'stoppingCondition.maxPendingTimeInSeconds'", { $0.stoppingCondition?.maxPendingTimeInSeconds = 60 }),
            (
                "at 'tags.1.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1",
                { $0.tags = [Tag(key: "", value: "v")] }
            ),
            (
                "at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50",
                { $0.tags = Array(repeating: Tag(key: "k", value: "v"), count: 51) }
            ),
            (
                "OutputConfig must name exactly one of TargetDevice and TargetPlatform",
                { $0.outputConfig?.targetPlatform = TargetPlatform(os: "LINUX", arch: "X86_64") }
            ),
            ("CompilerOptions 'not json' is not a JSON object", { $0.outputConfig?.compilerOptions = "not json" }),
            (
                "TargetPlatform ANDROID needs the API level",
                {
                    $0.outputConfig?.targetDevice = nil
                    $0.outputConfig?.targetPlatform = TargetPlatform(os: "ANDROID", arch: "ARM64")
                }
            ),
            (
                "TargetPlatform Accelerator MALI does not exist on LINUX/X86_64",
                {
                    $0.outputConfig?.targetDevice = nil
                    $0.outputConfig?.targetPlatform = TargetPlatform(os: "LINUX", arch: "X86_64", accelerator: "MALI")
                }
            ),
            ("InputConfig is required", { $0.inputConfig = nil }),
        ]
        for (expected, change) in cases {
            var bad = fixture.request("job-x")
            change(&bad)
            let message = validationMessage { _ = try service.create(bad) } ?? "accepted"
            #expect(message.contains(expected), "\(expected) / \(message)")
        }
        var two = fixture.request("job-x")
        two.roleArn = nil
        two.outputConfig?.targetDevice = "nope"
        #expect(validationMessage { _ = try service.create(two) }?.hasPrefix("2 validation errors detected: ") == true)
        // Good values of the same members pass, including Kiln's local locations.
        var good = fixture.request("a-b--c9")
        good.inputConfig?.frameworkVersion = "1.17"
        good.outputConfig = OutputConfig(
            s3OutputLocation: "file:///tmp/out", targetPlatform: TargetPlatform(os: "LINUX", arch: "X86_64"),
            compilerOptions: #"{"mcpu": "native"}"#)
        good.tags = [Tag(key: "team:ml", value: "vision")]
        #expect(validationMessage { _ = try service.create(good) } == nil)
        #expect(try service.describe(.init(compilationJobName: "a-b--c9")).compilationJobStatus == "STARTING")
    }

    @Test(
        "names are unique, unknown names are not found, and ARNs use the region and account",
        arguments: StoreKind.available)
    func names(store kind: StoreKind) throws {
        let fixture = try Fixture(kind)
        let service = fixture.service
        let response = try service.create(fixture.request("job-1"))
        #expect(response.compilationJobArn == "arn:aws:sagemaker:eu-west-1:111122223333:compilation-job/job-1")
        #expect(throws: APIError(.resourceInUse, "Compilation job job-1 already exists")) {
            _ = try service.create(fixture.request("job-1"))
        }
        #expect(throws: APIError.notFound("job-2")) { _ = try service.describe(.init(compilationJobName: "job-2")) }
        #expect(throws: APIError.notFound("job-2")) { try service.delete(.init(compilationJobName: "job-2")) }
    }

    @Test(
        "lists with filters, every sort and NextToken pages that neither repeat nor skip",
        arguments: StoreKind.available)
    func listing(store kind: StoreKind) throws {
        let fixture = try Fixture(kind)
        let service = fixture.service
        for index in 0..<25 {
            _ = try service.create(fixture.request(String(format: "job-%02d", (index * 7) % 25)))
            fixture.advance(1)
        }
        try service.stop(.init(compilationJobName: "job-03"))
        var seen: [String] = []
        var request = ListCompilationJobsRequest(maxResults: 10, sortBy: "Name", sortOrder: "Ascending")
        var pages = 0
        repeat {
            let page = try service.list(request)
            seen += page.compilationJobSummaries.map(\.compilationJobName)
            request.nextToken = page.nextToken
            pages += 1
        } while request.nextToken != nil
        #expect(pages == 3)
        #expect(seen == (0..<25).map { String(format: "job-%02d", $0) })
        let newest = try service.list(ListCompilationJobsRequest(maxResults: 3))
        #expect(newest.compilationJobSummaries.map(\.compilationJobName) == ["job-18", "job-11", "job-04"])
        let byStatus = try service.list(ListCompilationJobsRequest(sortBy: "Status", sortOrder: "Descending"))
        #expect(byStatus.compilationJobSummaries.first?.compilationJobStatus == "STOPPED")
        #expect(
            try service.list(ListCompilationJobsRequest(statusEquals: "STOPPED")).compilationJobSummaries.map(
                \.compilationJobName) == ["job-03"])
        #expect(
            try service.list(ListCompilationJobsRequest(nameContains: "JOB-1")).compilationJobSummaries.count == 10)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let window = ListCompilationJobsRequest(
            creationTimeAfter: start + 4.5, creationTimeBefore: start + 7.5, sortOrder: "Ascending")
        #expect(
            try service.list(window).compilationJobSummaries.map(\.compilationJobName) == [
                "job-10", "job-17", "job-24",
            ])
        // A token from another order, a garbled one and bad members are refused.
        let token = try service.list(ListCompilationJobsRequest(maxResults: 1)).nextToken
        #expect(
            validationMessage { _ = try service.list(ListCompilationJobsRequest(nextToken: token, sortBy: "Name")) }
                != nil)
        #expect(
            validationMessage { _ = try service.list(ListCompilationJobsRequest(nextToken: "%%%")) }
                == "Invalid pagination token")
        #expect(
            validationMessage { _ = try service.list(ListCompilationJobsRequest(maxResults: 101)) }?.contains(
                "'maxResults'") == true)
        #expect(
            validationMessage { _ = try service.list(ListCompilationJobsRequest(sortBy: "Size")) }?.contains("'sortBy'")
                == true)
    }

    @Test("stop ends a queued job at once; delete needs an ended job", arguments: StoreKind.available)
    func stopAndDelete(store kind: StoreKind) throws {
        let fixture = try Fixture(kind)
        let service = fixture.service
        _ = try service.create(fixture.request("job-1"))
        #expect(
            validationMessage { try service.delete(.init(compilationJobName: "job-1")) }?.contains(
                "stop it before deleting") == true)
        fixture.advance(2)
        try service.stop(.init(compilationJobName: "job-1"))
        let record = try service.record(.init(compilationJobName: "job-1"))
        #expect(record.status == .stopped)
        #expect(record.endTime == fixture.time)
        #expect(try fixture.store.claim(owner: "w", name: nil, now: fixture.time, lease: 30) == nil)
        #expect(
            validationMessage { try service.stop(.init(compilationJobName: "job-1")) }?.contains("already STOPPED")
                == true)
        try service.delete(.init(compilationJobName: "job-1"))
        #expect(throws: APIError.notFound("job-1")) { _ = try service.describe(.init(compilationJobName: "job-1")) }
    }

    @Test(
        "a job whose runner stops renewing its lease is re-queued once, then fails with WorkerLost",
        arguments: StoreKind.available)
    func lostRunner(store kind: StoreKind) throws {
        let fixture = try Fixture(kind)
        let service = fixture.service
        _ = try service.create(fixture.request("job-1"))
        let first = try #require(try fixture.store.claim(owner: "dead-1", name: nil, now: fixture.time, lease: 30))
        #expect(first.status == .inProgress && first.attempts == 1)
        fixture.advance(10)
        #expect(try service.describe(.init(compilationJobName: "job-1")).compilationJobStatus == "INPROGRESS")
        fixture.advance(25)
        #expect(try service.describe(.init(compilationJobName: "job-1")).compilationJobStatus == "STARTING")
        _ = try #require(try fixture.store.claim(owner: "dead-2", name: nil, now: fixture.time, lease: 30))
        fixture.advance(31)
        let record = try service.record(.init(compilationJobName: "job-1"))
        #expect(record.status == .failed)
        #expect(record.failureReason.hasPrefix("ServerError: WorkerLost: the runner dead-2 stopped renewing its lease"))
        #expect(record.attempts == 2)
    }

    @Test(
        "a runner compiles a job to COMPLETED: artifact at S3ModelArtifacts with the digest Describe reports",
        arguments: StoreKind.available)
    func runsToCompletion(store kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        let service = JobService(store: fixture.store)
        _ = try service.create(fixture.request("digits"))
        let runner = JobRunner(store: fixture.store, environment: fixture.environment())
        let record = try #require(try await runner.runNext())
        #expect(record.status == .completed, "\(record.failureReason)")
        let describe = try service.describe(.init(compilationJobName: "digits"))
        #expect(describe.modelArtifacts.s3ModelArtifacts == "s3://bucket/digits/model-ml_c4.tar.gz")
        #expect(describe.failureReason == "")
        #expect(describe.derivedInformation?.derivedDataInputConfig == #"{"image": [1, 1, 8, 8]}"#)
        #expect(describe.kilnDetails?.stages.map(\.stageName) == Stage.allCases.map(\.rawValue))
        let path = fixture.directory.path + "/objects/bucket/digits/model-ml_c4.tar.gz"
        #expect(describe.modelDigests?.artifactDigest == "sha256:" + (try fileSHA256(path)))
        let start = try #require(describe.compilationStartTime)
        let end = try #require(describe.compilationEndTime)
        #expect(describe.creationTime <= start && start <= end && describe.lastModifiedTime == end)
        #expect(try await runner.runNext() == nil)
    }

    @Test("a job that fails says why, in its record and its failed stage", arguments: StoreKind.available)
    func failure(store kind: StoreKind) async throws {
        let fixture = try Fixture(kind)
        let service = JobService(store: fixture.store)
        _ = try service.create(fixture.request("missing", model: "s3://nowhere/model.tar.gz"))
        let record = try #require(
            try await JobRunner(store: fixture.store, environment: fixture.environment()).runNext())
        #expect(record.status == .failed)
        #expect(record.failureReason.hasPrefix("ClientError: InputConfiguration: "))
        #expect(record.stages.last?.stage == .fetch && record.stages.last?.status == .failed)
        #expect(try service.describe(.init(compilationJobName: "missing")).modelArtifacts.s3ModelArtifacts == "")
    }
}

@Suite("the SQLite job store's schema")
struct MigrationTests {
    @Test("a store made by schema v1 migrates to v2 with its jobs kept, each under its ARN's account")
    func fromV1() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path + "/jobs.sqlite"
        let pool = try DatabasePool(path: path)
        try SQLiteJobStore.migrator.migrate(pool, upTo: "v1: jobs, workers, runner starts")
        let request = CreateCompilationJobRequest(
            compilationJobName: "old", roleArn: "arn:aws:iam::444455556666:role/r",
            inputConfig: InputConfig(s3Uri: "s3://b/m.tar.gz", framework: "ONNX"),
            outputConfig: OutputConfig(s3OutputLocation: "s3://b/o", targetDevice: "ml_c4"),
            stoppingCondition: StoppingCondition())
        let record = JobRecord(
            name: "old", arn: "arn:aws:sagemaker:us-east-1:444455556666:compilation-job/old", request: request,
            now: Date(timeIntervalSince1970: 1_800_000_000))
        let json = String(decoding: try JSONEncoder().encode(record), as: UTF8.self)
        try pool.write { db in
            try db.execute(
                sql:
                    "INSERT INTO jobs (name, status, creation_time, last_modified_time, record) VALUES (?, ?, ?, ?, ?)",
                arguments: ["old", "STARTING", 1_800_000_000.0, 1_800_000_000.0, json])
        }
        try pool.close()
        let store = try SQLiteJobStore(path: path)
        #expect(try store.fetch(account: "444455556666", name: "old") == record)
        #expect(try store.fetch(account: "123456789012", name: "old") == nil)
        let service = JobService(store: store, account: "444455556666")
        #expect(
            try service.list(ListCompilationJobsRequest()).compilationJobSummaries.map(\.compilationJobName) == ["old"])
    }
}

// All nine cases at once: each job's synchronous stages hold a thread of their own, so the runners'
// stop checks still run.
@Suite("stopping a job")
struct StopTests {
    @Test(
        "Stop inside each stage ends the job STOPPED in that stage, with no artifact and no work dir left",
        arguments: Stage.allCases)
    func stopInside(stage: Stage) async throws {
        let fixture = try Fixture()
        let service = JobService(store: fixture.store)
        _ = try service.create(fixture.request("job"))
        var environment = fixture.environment()
        // Stretched far beyond the bound below, so a stop that is slow to arrive under a loaded machine
        // still lands inside this stage, and "interrupted" cannot be confused with "ran to its end".
        environment.stageDelays = [stage: 300]
        var runner = JobRunner(store: fixture.store, environment: environment)
        runner.renewEvery = 0.1
        runner.pollEvery = .milliseconds(50)
        let running = Task { [runner] in try await runner.runNext() }
        let index = Stage.allCases.firstIndex(of: stage)!
        // Nine cold builds share two cores here: reaching pack can take longer than the stretched stage (on the
        // 2-core Zen 3, with the rest of the suite beside them, more than 240 s in two of three full runs).
        let deadline = Date().addingTimeInterval(420)
        while Date() < deadline {
            if let record = try fixture.store.fetch(account: service.account, name: "job"), record.stages.count >= index
            {
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let reached = try fixture.store.fetch(account: service.account, name: "job")?.stages.count ?? 0
        try #require(reached >= index, "the job did not reach \(stage) within 420 s")
        try await Task.sleep(for: .milliseconds(200))
        try service.stop(.init(compilationJobName: "job"))
        let started = Date()
        let record = try #require(try await running.value)
        #expect(Date().timeIntervalSince(started) < 120, "the 300 s stage was not interrupted")
        #expect(record.status == .stopped)
        #expect(record.failureReason == "")
        #expect(record.stages.count == index + 1)
        #expect(record.stages.last?.stage == stage && record.stages.last?.status == .stopped)
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.path + "/objects/bucket/job"))
        let work = (try? FileManager.default.contentsOfDirectory(atPath: fixture.directory.path + "/work")) ?? []
        #expect(work.isEmpty)
    }
}

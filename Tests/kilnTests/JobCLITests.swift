import Foundation
import TestSupport
import Testing

/// The `kiln` executable beside the test bundle.
var kilnExecutable: URL {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let executable = bundle.appendingPathComponent("kiln")
    return FileManager.default.fileExists(atPath: executable.path)
        ? executable : bundle.deletingLastPathComponent().appendingPathComponent("kiln")
}

/// Runs `kiln` with extra environment; returns its exit status and output.
func kiln(_ arguments: [String], home: String, environment extra: [String: String]) throws -> (
    status: Int32, stdout: String, stderr: String
) {
    let process = Process()
    process.executableURL = kilnExecutable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(extra.merging(["KILN_HOME": home]) { $1 }) {
        $1
    }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

/// A job-store sandbox: its own KILN_HOME, and a `CC` that sleeps before compiling, so a build
/// stage lasts long enough to be stopped or timed out.
struct JobSandbox {
    let directory: TemporaryDirectory
    /// KILN_STORE for every command: a new PostgreSQL database, or nil for the SQLite default.
    let store: String?
    var home: String { directory.path + "/home" }
    var slowCC: String { directory.path + "/slow-cc" }

    init(postgres: Bool = false) throws {
        directory = try TemporaryDirectory()
        store = postgres ? try TestServices.newPostgresDatabase() : nil
        try "#!/bin/sh\nsleep 30\nexec /opt/swift/usr/bin/clang \"$@\"\n".write(
            toFile: slowCC, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: slowCC)
    }

    func run(_ arguments: [String], _ environment: [String: String] = [:]) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        try kiln(arguments, home: home, environment: baseEnvironment.merging(environment) { $1 })
    }

    /// What every command of the sandbox runs with: its store, no detached runner, the local object store.
    var baseEnvironment: [String: String] {
        var values = ["KILN_NO_AUTOSTART": "1", "KILN_OBJECT_STORE": "local"]
        if let store { values["KILN_STORE"] = store }
        return values
    }

    func create(
        _ name: String, output: String = "s3://bucket/out",
        model: String = repositoryRoot + "/models/digits-cnn/model.tar.gz", extra: [String] = []
    ) throws -> Int32 {
        let input =
            #"{"S3Uri": "\#(model)", "Framework": "ONNX", "DataInputConfig": "{\"image\": [1,1,8,8]}"}"#
        return try run(
            [
                "create-compilation-job", "--compilation-job-name", name, "--role-arn",
                "arn:aws:iam::123456789012:role/kiln-test", "--input-config", input, "--output-config",
                #"{"S3OutputLocation": "\#(output)", "TargetDevice": "ml_c4"}"#, "--stopping-condition",
                #"{"MaxRuntimeInSeconds": 600}"#,
            ] + extra
        ).status
    }

    func status(_ name: String) throws -> [String: Any] {
        let result = try run(["describe-compilation-job", "--compilation-job-name", name])
        return (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    /// Polls Describe until `done` holds or `seconds` pass. What it returns is always read after the last
    /// sleep: on a loaded machine the test's task can resume long after its deadline, and the Describe
    /// before the sleep would then be a stale one (a CI run once saw the first, still-STARTING record).
    func waitFor(_ name: String, seconds: Double, _ done: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let last = try status(name)
            if done(last) || Date() >= deadline { return last }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    func startWorker(_ environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = kilnExecutable
        process.arguments = ["worker"]
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["KILN_HOME": home].merging(baseEnvironment) { $1 }.merging(environment) { $1 }
        ) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }
}

/// Starts a long-running `kiln` command (serve, worker) and reads the port its first stdout line names
/// ("... http://127.0.0.1:PORT...").
func startKiln(_ arguments: [String], environment: [String: String]) throws -> (process: Process, port: Int) {
    let process = Process()
    process.executableURL = kilnExecutable
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardError = FileHandle.nullDevice
    let (text, _) = try startReadingFirstLine(process)
    guard let range = text.range(of: #"127\.0\.0\.1:(\d+)"#, options: .regularExpression),
        let port = Int(text[range].split(separator: ":").last ?? "")
    else {
        process.terminate()
        throw CocoaError(.fileReadCorruptFile)
    }
    return (process, port)
}

/// Process ids whose command line contains `text`.
func processes(containing text: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { entry in
        guard Int(entry) != nil, let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else {
            return false
        }
        return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(text)
    }
}

func jobStatus(_ describe: [String: Any]) -> String { describe["CompilationJobStatus"] as? String ?? "?" }

@Suite("compilation jobs from the command line", .serialized)
struct JobCLITests {
    @Test("create returns at once and a detached runner takes the job to COMPLETED")
    func detachedRunner() async throws {
        let sandbox = try JobSandbox()
        let started = Date()
        let result = try kiln(
            [
                "create-compilation-job", "--compilation-job-name", "digits", "--role-arn",
                "arn:aws:iam::123456789012:role/kiln-test", "--input-config",
                #"{"S3Uri": "\#(repositoryRoot)/models/digits-cnn/model.tar.gz", "Framework": "ONNX", "DataInputConfig": "{\"image\": [1,1,8,8]}"}"#,
                "--output-config", #"{"S3OutputLocation": "s3://bucket/out", "TargetDevice": "ml_c4"}"#,
                "--stopping-condition", #"{"MaxRuntimeInSeconds": 600}"#,
            ], home: sandbox.home, environment: [:])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(Date().timeIntervalSince(started) < 2)
        #expect(result.stdout.contains(#""CompilationJobArn": "arn:aws:sagemaker:"#))
        let describe = try await sandbox.waitFor("digits", seconds: 60) { jobStatus($0) == "COMPLETED" }
        let runnerLog = (try? String(contentsOfFile: sandbox.home + "/logs/runner.log", encoding: .utf8)) ?? "(none)"
        #expect(jobStatus(describe) == "COMPLETED", "\(describe)\nrunner.log:\n\(runnerLog)")
        let artifacts = describe["ModelArtifacts"] as? [String: Any]
        #expect(artifacts?["S3ModelArtifacts"] as? String == "s3://bucket/out/model-ml_c4.tar.gz")
        #expect(FileManager.default.fileExists(atPath: sandbox.home + "/objects/bucket/out/model-ml_c4.tar.gz"))
    }

    @Test("errors print like the aws CLI's and exit 254")
    func awsErrors() throws {
        let sandbox = try JobSandbox()
        let missing = try sandbox.run(["describe-compilation-job", "--compilation-job-name", "nope"])
        #expect(missing.status == 254)
        #expect(
            missing.stderr.contains(
                "An error occurred (ResourceNotFound) when calling the DescribeCompilationJob operation: "))
        #expect(try sandbox.create("twice") == 0)
        let again = try sandbox.run([
            "create-compilation-job", "--cli-input-json",
            #"{"CompilationJobName": "twice", "RoleArn": "arn:aws:iam::123456789012:role/kiln-test", "OutputConfig": {"S3OutputLocation": "s3://b/o", "TargetDevice": "ml_c4"}, "StoppingCondition": {}, "InputConfig": {"S3Uri": "s3://b/m.tar.gz", "Framework": "ONNX"}}"#,
        ])
        #expect(again.status == 254)
        #expect(
            again.stderr.contains("An error occurred (ResourceInUse) when calling the CreateCompilationJob operation"))
        let badJSON = try sandbox.run(["create-compilation-job", "--input-config", "{nope"])
        #expect(badJSON.status != 0 && badJSON.stderr.contains("Error parsing parameter '--input-config'"))
    }

    @Test("stop during the build ends the job STOPPED, kills clang and uploads nothing")
    func stopDuringBuild() async throws {
        let sandbox = try JobSandbox()
        #expect(try sandbox.create("slow") == 0)
        let worker = try sandbox.startWorker(["CC": sandbox.slowCC])
        defer { worker.terminate() }
        let building = try await sandbox.waitFor("slow", seconds: 30) { describe in
            let stages = (describe["KilnDetails"] as? [String: Any])?["Stages"] as? [[String: Any]] ?? []
            return stages.count >= 5
        }
        #expect(jobStatus(building) == "INPROGRESS")
        let stop = try sandbox.run(["stop-compilation-job", "--compilation-job-name", "slow"])
        #expect(stop.status == 0, "\(stop.stderr)")
        let stopped = try await sandbox.waitFor("slow", seconds: 15) { jobStatus($0) == "STOPPED" }
        #expect(jobStatus(stopped) == "STOPPED")
        let stages = (stopped["KilnDetails"] as? [String: Any])?["Stages"] as? [[String: Any]] ?? []
        #expect(stages.last?["StageName"] as? String == "build")
        #expect(stages.last?["Status"] as? String == "Stopped")
        #expect(!FileManager.default.fileExists(atPath: sandbox.home + "/objects/bucket/out"))
        let work = (try? FileManager.default.contentsOfDirectory(atPath: sandbox.home + "/work")) ?? []
        #expect(work.isEmpty)
        #expect(processes(containing: sandbox.slowCC).isEmpty, "the slow compiler still runs")
    }

    @Test("a MaxRuntimeInSeconds that runs out mid-build fails the job with the StoppingCondition reason")
    func maxRuntime() throws {
        let sandbox = try JobSandbox()
        let result = try sandbox.run(
            [
                "compile", "--model", repositoryRoot + "/models/digits-cnn/model.tar.gz", "--data-input-config",
                #"{"image": [1,1,8,8]}"#, "--target-device", "ml_c4", "--output", sandbox.directory.path + "/out",
                "--max-runtime", "2", "--job-name", "short",
            ], ["CC": sandbox.slowCC])
        #expect(result.status == 1)
        #expect(
            result.stderr.contains("ClientError: StoppingCondition: compilation exceeded MaxRuntimeInSeconds (2 s)"))
        let describe = try sandbox.status("short")
        #expect(jobStatus(describe) == "FAILED")
        #expect(
            describe["FailureReason"] as? String
                == "ClientError: StoppingCondition: compilation exceeded MaxRuntimeInSeconds (2 s)")
    }

    @Test(
        "a runner killed with SIGKILL mid-job: the job is re-queued and a new runner completes it",
        arguments: TestServices.postgres != nil || TestServices.required ? [false, true] : [false])
    func killedRunner(postgres: Bool) async throws {
        let sandbox = try JobSandbox(postgres: postgres)
        #expect(try sandbox.create("orphan") == 0)
        let worker = try sandbox.startWorker(["CC": sandbox.slowCC, "KILN_LEASE_SECONDS": "2"])
        _ = try await sandbox.waitFor("orphan", seconds: 30) { jobStatus($0) == "INPROGRESS" }
        kill(worker.processIdentifier, SIGKILL)
        worker.waitUntilExit()
        let requeued = try await sandbox.waitFor("orphan", seconds: 10) { jobStatus($0) != "INPROGRESS" }
        #expect(jobStatus(requeued) == "STARTING")
        let second = try sandbox.startWorker()
        defer { second.terminate() }
        // The new runner compiles the kernel library cold in this sandbox's KILN_HOME (at -O3, a few seconds
        // alone) while the rest of the suite compiles on the same two cores: once, in a full local run, that
        // took more than 60 s. The wait is a bound on a hang, not the time the step should take.
        let done = try await sandbox.waitFor("orphan", seconds: 180) { jobStatus($0) == "COMPLETED" }
        #expect(jobStatus(done) == "COMPLETED")
        #expect((done["KilnDetails"] as? [String: Any])?["Attempts"] as? Int == 2)
    }

    @Test("two processes creating jobs at once: every job stored once, List returns them all")
    func concurrentCreators() async throws {
        let sandbox = try JobSandbox()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for creator in 0..<2 {
                group.addTask {
                    for index in 0..<6 {
                        let status = try sandbox.create("c\(creator)-\(index)")
                        #expect(status == 0)
                    }
                }
            }
            try await group.waitForAll()
        }
        let list = try sandbox.run(["list-compilation-jobs", "--sort-by", "Name", "--sort-order", "Ascending"])
        let object = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
        let names = (object?["CompilationJobSummaries"] as? [[String: Any]])?.compactMap {
            $0["CompilationJobName"] as? String
        }
        #expect(names == (0..<2).flatMap { creator in (0..<6).map { "c\(creator)-\($0)" } }.sorted())
    }
}

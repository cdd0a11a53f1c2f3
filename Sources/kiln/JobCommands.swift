import APIServer
import ArgumentParser
import Foundation
import Jobs
import Logging
import Pipeline

// The aws CLI's `sagemaker` compilation-job commands, same flags, same JSON
// output and same error lines, over the local job store.

/// Where the job store is and how to reach it, shared by the job commands.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .customLong("store"),
        help: ArgumentHelp(
            "The job store: postgres://user:password@host:port/db, sqlite:PATH or a path (default: $KILN_STORE, else $KILN_HOME/jobs.sqlite).",
            valueName: "url"))
    var location: String?

    func service() throws -> JobService {
        do {
            let environment = try PipelineEnvironment.fromProcess()
            if let location {
                // A runner this command starts (RunnerLauncher) inherits the environment: it uses the same store.
                setenv("KILN_STORE", location, 1)
            }
            return JobService(store: try JobStoreLocation.open(location, home: environment.home.path).store)
        } catch let error as APIError {
            throw fail(error.message)
        } catch let error as KilnError {
            throw fail(error.failureReason)
        }
    }
}

/// Prints an API error as the aws CLI does and exits 254 (its code for service errors).
func awsFailure(_ error: Error, operation: String) -> ExitCode {
    let apiError = error as? APIError ?? APIError(.internalFailure, "\(error)")
    FileHandle.standardError.write(
        Data(
            "\nAn error occurred (\(apiError.code.rawValue)) when calling the \(operation) operation: \(apiError.message)\n"
                .utf8))
    return ExitCode(254)
}

/// The aws CLI's JSON output: 4-space indent, ISO 8601 timestamps with offset.
func printAWS<T: Encodable>(_ value: T) throws {
    print(AWSJSON.cliText(value))
}

/// A JSON parameter as the aws CLI takes it: inline, or `file://path`.
func jsonParameter<T: Decodable>(_ text: String?, _ type: T.Type, flag: String) throws -> T? {
    guard var text else { return nil }
    if text.hasPrefix("file://") {
        let path = String(text.dropFirst("file://".count))
        guard let contents = FileManager.default.contents(atPath: path) else {
            throw fail("Error parsing parameter '\(flag)': Unable to load paramfile \(text): cannot read \(path)")
        }
        text = String(decoding: contents, as: UTF8.self)
    }
    do {
        return try AWSJSON.decoder().decode(T.self, from: Data(text.utf8))
    } catch {
        throw fail("Error parsing parameter '\(flag)': Invalid JSON: \(AWSJSON.describe(decodingError: error))")
    }
}

struct CreateCompilationJob: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-compilation-job",
        abstract: "Create a compilation job (CreateCompilationJob); it runs in the background.")

    @Option(help: "The job's name: letters, digits and hyphens, at most 63.") var compilationJobName: String?
    @Option(help: "An IAM role ARN, as AWS requires (Kiln records it).") var roleArn: String?
    @Option(help: #"InputConfig JSON: {"S3Uri": ..., "Framework": "ONNX", "DataInputConfig": ...}, or file://path."#)
    var inputConfig: String?
    @Option(help: #"OutputConfig JSON: {"S3OutputLocation": ..., "TargetDevice": "ml_c5"}, or file://path."#)
    var outputConfig: String?
    @Option(help: #"StoppingCondition JSON, e.g. {"MaxRuntimeInSeconds": 900}."#) var stoppingCondition: String?
    @Option(help: #"Tags JSON: [{"Key": "k", "Value": "v"}]."#) var tags: String?
    @Option(help: "VpcConfig JSON (recorded, not used).") var vpcConfig: String?
    @Option(help: "The whole request as JSON (or file://path); flags override its members.") var cliInputJson: String?
    @Flag(help: "Wait for the job to end, showing each stage as it finishes.") var wait = false
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let operation = "CreateCompilationJob"
        var request =
            try jsonParameter(
                cliInputJson, CreateCompilationJobRequest.self, flag: "--cli-input-json")
            ?? CreateCompilationJobRequest(
                compilationJobName: nil, roleArn: nil, inputConfig: nil, outputConfig: nil, stoppingCondition: nil)
        if let compilationJobName { request.compilationJobName = compilationJobName }
        if let roleArn { request.roleArn = roleArn }
        if let value = try jsonParameter(inputConfig, InputConfig.self, flag: "--input-config") {
            request.inputConfig = value
        }
        if let value = try jsonParameter(outputConfig, OutputConfig.self, flag: "--output-config") {
            request.outputConfig = value
        }
        if let value = try jsonParameter(
            stoppingCondition, StoppingCondition.self, flag: "--stopping-condition")
        {
            request.stoppingCondition = value
        }
        if let value = try jsonParameter(tags, [Tag].self, flag: "--tags") {
            request.tags = value
        }
        if let value = try jsonParameter(vpcConfig, VpcConfig.self, flag: "--vpc-config") {
            request.vpcConfig = value
        }
        let service = try store.service()
        let response: CreateCompilationJobResponse
        do {
            response = try service.create(request)
        } catch {
            throw awsFailure(error, operation: operation)
        }
        try printAWS(response)
        RunnerLauncher.ensureRunner(service)
        if wait, let name = request.compilationJobName {
            try await waitForJob(service, name)
        }
    }
}

/// Polls a job until it ends, printing each finished stage to stderr; fails unless it COMPLETED.
func waitForJob(_ service: JobService, _ name: String) async throws {
    var shown = 0
    while true {
        let record: JobRecord
        do {
            record = try service.record(CompilationJobNameRequest(compilationJobName: name))
        } catch {
            throw awsFailure(error, operation: "DescribeCompilationJob")
        }
        for stage in record.stages.dropFirst(shown) {
            let reason = stage.failureReason.map { "  \($0)" } ?? ""
            FileHandle.standardError.write(
                Data(
                    "\(stage.stage.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(stage.status.rawValue) \(InspectionText.seconds(stage.seconds))\(reason)\n"
                        .utf8))
        }
        shown = max(shown, record.stages.count)
        if record.status.isFinal {
            FileHandle.standardError.write(Data("\(name): \(record.status.rawValue)\n".utf8))
            if record.status == .completed { return }
            throw fail(record.failureReason.isEmpty ? "the job ended \(record.status.rawValue)" : record.failureReason)
        }
        RunnerLauncher.ensureRunner(service)
        try await Task.sleep(for: .milliseconds(250))
    }
}

struct DescribeCompilationJob: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe-compilation-job", abstract: "Describe a compilation job (DescribeCompilationJob).")

    @Option(help: "The job's name.") var compilationJobName: String?
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let service = try store.service()
        do {
            try printAWS(try service.describe(CompilationJobNameRequest(compilationJobName: compilationJobName)))
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw awsFailure(error, operation: "DescribeCompilationJob")
        }
        RunnerLauncher.ensureRunner(service)
    }
}

struct ListCompilationJobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list-compilation-jobs",
        abstract: "List compilation jobs (ListCompilationJobs); every page unless --max-results or --next-token.")

    @Option(help: "Only jobs created after this time (ISO 8601 or epoch seconds).") var creationTimeAfter: String?
    @Option(help: "Only jobs created before this time.") var creationTimeBefore: String?
    @Option(help: "Only jobs modified after this time.") var lastModifiedTimeAfter: String?
    @Option(help: "Only jobs modified before this time.") var lastModifiedTimeBefore: String?
    @Option(help: "Only jobs whose name contains this (case-insensitive).") var nameContains: String?
    @Option(help: "Only jobs in this status.") var statusEquals: String?
    @Option(help: "Name, CreationTime (default) or Status.") var sortBy: String?
    @Option(help: "Ascending or Descending (default).") var sortOrder: String?
    @Option(help: "One page of at most this many jobs (1-100), with its NextToken.") var maxResults: Int?
    @Option(help: "Continue from this NextToken (one page).") var nextToken: String?
    @Flag(help: "One page only, as the API returns it.") var noPaginate = false
    @OptionGroup var store: StoreOptions

    func run() async throws {
        func time(_ text: String?, _ flag: String) throws -> Date? {
            guard let text else { return nil }
            guard let date = try? AWSJSON.decoder().decode([Date].self, from: Data("[\"\(text)\"]".utf8)).first else {
                throw fail(
                    "Error parsing parameter '\(flag)': '\(text)' is not a timestamp (ISO 8601 or epoch seconds)")
            }
            return date
        }
        var request = ListCompilationJobsRequest(
            nextToken: nextToken, maxResults: maxResults,
            creationTimeAfter: try time(creationTimeAfter, "--creation-time-after"),
            creationTimeBefore: try time(creationTimeBefore, "--creation-time-before"),
            lastModifiedTimeAfter: try time(lastModifiedTimeAfter, "--last-modified-time-after"),
            lastModifiedTimeBefore: try time(lastModifiedTimeBefore, "--last-modified-time-before"),
            nameContains: nameContains, statusEquals: statusEquals, sortBy: sortBy, sortOrder: sortOrder)
        let service = try store.service()
        let singlePage = noPaginate || maxResults != nil || nextToken != nil
        do {
            if singlePage {
                try printAWS(try service.list(request))
                return
            }
            // Like the aws CLI: follow NextToken to the end and print one merged list.
            request.maxResults = 100
            var all: [CompilationJobSummary] = []
            while true {
                let page = try service.list(request)
                all += page.compilationJobSummaries
                guard let next = page.nextToken else { break }
                request.nextToken = next
            }
            try printAWS(ListCompilationJobsResponse(compilationJobSummaries: all, nextToken: nil))
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw awsFailure(error, operation: "ListCompilationJobs")
        }
    }
}

/// Log lines of the long-running commands (serve, worker) go to stderr from `level` up.
func bootstrapLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}

/// Runs an operation that takes only a job name and prints nothing on success (Stop, Delete).
func runNameOperation(
    _ operation: String, _ name: String?, _ store: StoreOptions,
    _ body: (JobService, CompilationJobNameRequest) throws -> Void
) throws {
    let service = try store.service()
    do {
        try body(service, CompilationJobNameRequest(compilationJobName: name))
    } catch {
        throw awsFailure(error, operation: operation)
    }
}

struct StopCompilationJob: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop-compilation-job", abstract: "Stop a compilation job (StopCompilationJob).")

    @Option(help: "The job's name.") var compilationJobName: String?
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try runNameOperation("StopCompilationJob", compilationJobName, store) { try $0.stop($1) }
    }
}

struct DeleteCompilationJob: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delete-compilation-job", abstract: "Delete an ended compilation job (DeleteCompilationJob).")

    @Option(help: "The job's name.") var compilationJobName: String?
    @OptionGroup var store: StoreOptions

    func run() async throws {
        try runNameOperation("DeleteCompilationJob", compilationJobName, store) { try $0.delete($1) }
    }
}

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run queued compilation jobs from the job store; SIGTERM drains.")

    @Option(help: "Jobs run at once.") var concurrency = 1
    @Flag(help: "Exit once the queue has stayed empty for a few seconds (how CLIs start a runner).")
    var exitWhenIdle = false
    @Option(help: "Serve Prometheus metrics at http://127.0.0.1:PORT/metrics (0: any free port, printed).")
    var metricsPort: Int?
    @Option(help: "Seconds a draining worker lets running jobs finish before re-queueing them.")
    var graceSeconds = 30
    @OptionGroup var store: StoreOptions

    func run() async throws {
        bootstrapLogging(level: .info)
        let logger = Logger(label: "kiln.worker")
        let service = try store.service()
        let environment = try PipelineEnvironment.fromProcess()
        var runner = JobRunner(store: service.store, environment: environment)
        // Tests shorten the lease to see a killed runner's job reaped quickly.
        if let text = ProcessInfo.processInfo.environment["KILN_LEASE_SECONDS"], let lease = Double(text), lease > 0 {
            runner.lease = lease
            runner.renewEvery = min(runner.renewEvery, lease / 3)
        }
        let worker = JobWorker(
            runner: runner, concurrency: concurrency, exitWhenIdle: exitWhenIdle, log: { logger.info("\($0)") })
        try await WorkerProcess.run(
            worker: worker, metricsPort: metricsPort, gracePeriod: .seconds(graceSeconds), logger: logger,
            onMetricsListening: { port in
                FileHandle.standardOutput.write(Data("kiln worker: metrics on http://127.0.0.1:\(port)/metrics\n".utf8))
            })
    }
}

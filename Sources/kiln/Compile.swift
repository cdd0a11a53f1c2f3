import ArgumentParser
import Foundation
import Frontends
import Jobs
import Pipeline

/// `kiln compile`: the whole pipeline on this machine, fetch → upload.
struct Compile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Compile a model into a native artifact for a target.")

    @Option(help: "model.tar.gz, a bare .onnx file, file:///path, s3://bucket/key or an https S3 URL.")
    var model: String

    @Option(help: "The InputConfig.Framework of the model.")
    var framework: String = "ONNX"

    @Option(help: #"Input shapes, e.g. '{"data": [1,3,224,224]}'. Optional when the model's inputs are static."#)
    var dataInputConfig: String?

    @Option(help: "A TargetDevice, e.g. ml_c5 (see TargetDevices/).")
    var targetDevice: String?

    @Option(help: "A TargetPlatform as OS/ARCH[/ACCELERATOR], e.g. LINUX/X86_64.")
    var targetPlatform: String?

    @Option(help: #"CompilerOptions JSON, e.g. '{"mcpu": "native"}'."#)
    var compilerOptions: String?

    @Option(help: "Where the artifact goes: a directory, file:///dir or s3://bucket/prefix.")
    var output: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @OptionGroup var store: StoreOptions

    @Option(help: "The job name this run is recorded under (default: compile-<time>-<random>).")
    var jobName: String?

    @Option(help: "Stop the compilation after this many seconds (StoppingCondition.MaxRuntimeInSeconds).")
    var maxRuntime: Int = JobService.defaultMaxRuntime

    func run() async throws {
        let target: TargetRequest
        switch (targetDevice, targetPlatform) {
        case (let device?, nil):
            target = .device(device, compilerOptions: compilerOptions)
        case (nil, let platform?):
            let parts = platform.split(separator: "/").map(String.init)
            guard parts.count == 2 || parts.count == 3 else {
                throw fail(
                    "ClientError: TargetDevice: --target-platform must be OS/ARCH or OS/ARCH/ACCELERATOR, e.g. LINUX/X86_64"
                )
            }
            target = .platform(
                os: parts[0], arch: parts[1], accelerator: parts.count == 3 ? parts[2] : nil,
                compilerOptions: compilerOptions)
        default:
            throw fail("ClientError: TargetDevice: give exactly one of --target-device and --target-platform")
        }
        let (_, environment) = try frameworkAndEnvironment(self.framework)
        // The run is a job like any other: created already claimed, run here, and `describe`-able afterwards.
        let service = try store.service()
        let owner = JobRunner.makeOwner()
        let job: JobRecord
        do {
            job = try service.createClaimed(jobRequest(target, environment), owner: owner, lease: 30)
        } catch {
            throw awsFailure(error, operation: "CreateCompilationJob")
        }
        var runner = JobRunner(store: service.store, environment: environment, owner: owner)
        runner.lease = 30
        let outcome = try await runner.execute(job)
        switch outcome.result {
        case .success(let result):
            if json {
                print(try jsonText(CompilationSummary(result, job: job.name)))
            } else {
                print(
                    InspectionText.render(InspectionSummary(result.inspection)).split(separator: "\n").filter {
                        !$0.hasPrefix("stages")
                    }.joined(separator: "\n"))
                let total = result.records.reduce(0) { $0 + $1.seconds }
                print(
                    "stages     "
                        + result.records.map { "\($0.stage.rawValue) \(InspectionText.seconds($0.seconds))" }.joined(
                            separator: "  ") + "  (total \(InspectionText.seconds(total)))")
                print("variants   " + result.manifest.variants.map(\.name).joined(separator: ", "))
                print("artifact   \(result.artifactURI)  \(result.artifactDigest)")
                print("job        \(job.name)")
            }
        case .failure(let failure):
            if json { print(try jsonText(InspectionSummary(failure))) }
            // The job record's reason: it also says when MaxRuntimeInSeconds ran out.
            let reason = outcome.record?.failureReason ?? ""
            throw fail(reason.isEmpty ? failure.failureReason : reason)
        }
    }

    /// The CreateCompilationJob request this run stands for, with local paths made absolute.
    func jobRequest(_ target: TargetRequest, _ environment: PipelineEnvironment) -> CreateCompilationJobRequest {
        func absolute(_ path: String) -> String {
            path.contains("://") || path.hasPrefix("/") ? path : environment.workingDirectory + "/" + path
        }
        var output = OutputConfig(s3OutputLocation: absolute(self.output), compilerOptions: compilerOptions)
        switch target {
        case .device(let name, _): output.targetDevice = name
        case .platform(let os, let arch, let accelerator, _):
            output.targetPlatform = TargetPlatform(os: os, arch: arch, accelerator: accelerator)
        }
        let stamp = AWSJSON.isoTimestamp(Date(), timeZone: TimeZone(identifier: "UTC")!).prefix(19).filter(\.isNumber)
        return CreateCompilationJobRequest(
            compilationJobName: jobName ?? "compile-\(stamp)-\(UUID().uuidString.prefix(6).lowercased())",
            roleArn: "arn:aws:iam::\(JobService.defaultAccount()):role/kiln-local",
            inputConfig: InputConfig(
                s3Uri: absolute(model), dataInputConfig: dataInputConfig, framework: framework.uppercased()),
            outputConfig: output, stoppingCondition: StoppingCondition(maxRuntimeInSeconds: maxRuntime))
    }
}

/// `kiln compile --json`.
struct CompilationSummary: Encodable {
    var job: String
    var artifact: String
    var artifactPath: String?
    var digest: String
    var targetDevice: String
    var variants: [String]
    var arenaBytes: Int
    var weightsBytes: Int
    var stages: [InspectionSummary.Stage]
    var kernelCacheHits: Int

    init(_ result: Compilation, job: String) {
        self.job = job
        artifact = result.artifactURI
        artifactPath = result.artifactPath
        digest = result.artifactDigest
        targetDevice = result.manifest.targetDevice
        variants = result.manifest.variants.map(\.name)
        arenaBytes = result.manifest.arenaBytes
        weightsBytes = result.manifest.weightsBytes
        stages = result.records.map(InspectionSummary.stage)
        kernelCacheHits = result.kernelCacheHits
    }
}

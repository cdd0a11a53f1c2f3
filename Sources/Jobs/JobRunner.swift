import Diagnostics
import Foundation
import Frontends
import Pipeline

/// Runs claimed jobs: the pipeline stage by stage, the job record updated as
/// each stage ends, the lease renewed by a heartbeat, and Stop and
/// MaxRuntimeInSeconds honoured inside stages (the pipeline is cancelled,
/// which kills a running clang; its work dir is removed and nothing is
/// uploaded unless the artifact is whole).
public struct JobRunner: Sendable {
    public var store: any JobStore
    public var environment: PipelineEnvironment
    /// Who holds the lease: host, process and a random part.
    public var owner: String
    /// How long a lease lasts without renewal, and how often it is renewed.
    public var lease: TimeInterval = 30
    public var renewEvery: TimeInterval = 2
    /// How often the runner looks for a stop request or an expired deadline.
    public var pollEvery: Duration = .milliseconds(200)

    public init(store: any JobStore, environment: PipelineEnvironment, owner: String = JobRunner.makeOwner()) {
        self.store = store
        self.environment = environment
        self.owner = owner
    }

    public static func makeOwner() -> String {
        "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(UUID().uuidString.prefix(8))"
    }

    /// Claims the oldest queued job (or the named one) and runs it; nil when there was none.
    public func runNext(name: String? = nil) async throws -> JobRecord? {
        guard let job = try claimNext(name: name) else { return nil }
        return try await run(job)
    }

    /// Reaps lost runners' jobs, then claims the oldest queued job (or the named one) for this runner.
    public func claimNext(name: String? = nil) throws -> JobRecord? {
        _ = try store.reapExpired(now: Date())
        return try store.claim(owner: owner, name: name, now: Date(), lease: lease)
    }

    private enum Interruption: Sendable {
        case stopped
        case timedOut(Int)
        case lost
    }

    private enum Event: Sendable {
        case finished(Result<Compilation, PipelineFailure>)
        case interrupted(Interruption)
        case monitorEnded
    }

    /// Runs a job this runner has claimed, to its final status.
    func run(_ job: JobRecord) async throws -> JobRecord? {
        try await execute(job).record
    }

    /// What running one job produced: its final record, and the pipeline's own result for callers that print it.
    public struct Outcome: Sendable {
        public var record: JobRecord?
        public var result: Result<Compilation, PipelineFailure>
    }

    /// Runs a job this runner has claimed (see `JobService.createClaimed`) to its final status.
    public func execute(_ job: JobRecord) async throws -> Outcome {
        let progress = StageLog()
        let maxRuntime = job.request.stoppingCondition?.maxRuntimeInSeconds ?? JobService.defaultMaxRuntime
        let deadline = Date().addingTimeInterval(TimeInterval(maxRuntime))
        let (result, interruption): (Result<Compilation, PipelineFailure>, Interruption?) = await withTaskGroup(
            of: Event.self
        ) { group in
            // The pipeline's synchronous stages (unpack, parse, lower, ...) run on a thread of their own,
            // not on Swift's small cooperative pool, where they would hold up heartbeats and stop checks.
            group.addTask(executorPreference: StageThread(label: "kiln.job.\(job.name)")) {
                do {
                    return .finished(.success(try await compile(job, progress: progress)))
                } catch let failure as PipelineFailure {
                    return .finished(.failure(failure))
                } catch {
                    return .finished(
                        .failure(PipelineFailure(records: [], error: .server(.internal, "\(error)"))))
                }
            }
            group.addTask {
                await monitor(job.account, job.name, deadline: deadline, maxRuntime: maxRuntime, progress: progress)
            }
            var interruption: Interruption?
            for await event in group {
                switch event {
                case .finished(let result):
                    group.cancelAll()
                    return (result, interruption)
                case .interrupted(let why):
                    interruption = why
                    group.cancelAll()
                case .monitorEnded:
                    continue
                }
            }
            return (
                .failure(PipelineFailure(records: [], error: .server(.internal, "the job ended without a result"))), nil
            )
        }
        if Task.isCancelled, interruption == nil {
            // The runner itself is shutting down (a server draining past its grace period): the job is
            // not the user's to lose, so it goes back in the queue for the next runner.
            try store.requeue(account: job.account, name: job.name, owner: owner, now: Date())
            return Outcome(record: try store.fetch(account: job.account, name: job.name), result: result)
        }
        if case .lost? = interruption {
            return Outcome(record: try store.fetch(account: job.account, name: job.name), result: result)
        }
        let now = Date()
        let record = try store.update(account: job.account, name: job.name) { record in
            // Someone else holds the job now (its lease was reaped): leave their record alone.
            guard record.leaseOwner == owner else { return }
            switch result {
            case .success(let compilation):
                record.stages = compilation.records
                record.artifactURI = compilation.artifactURI
                record.artifactDigest = compilation.artifactDigest
                record.kernelCacheHits = compilation.kernelCacheHits
                record.derivedDataInputConfig = Self.derivedConfig(compilation)
                record.end(.completed, reason: "", at: now)
            case .failure(let failure):
                record.stages = failure.records
                switch interruption {
                case .stopped?:
                    record.end(.stopped, reason: "", at: now)
                case .timedOut(let seconds)?:
                    record.end(
                        .failed,
                        reason:
                            "ClientError: StoppingCondition: compilation exceeded MaxRuntimeInSeconds (\(seconds) s)",
                        at: now)
                default:
                    record.end(.failed, reason: failure.failureReason, at: now)
                }
            }
        }
        return Outcome(record: record, result: result)
    }

    private func compile(_ job: JobRecord, progress: StageLog) async throws -> Compilation {
        let input = job.request.inputConfig!
        let output = job.request.outputConfig!
        let framework: Framework
        do {
            framework = try Framework(parsing: input.framework ?? "")
        } catch let error as KilnError {
            throw PipelineFailure(records: [], error: error)
        }
        let target: TargetRequest
        if let device = output.targetDevice {
            target = .device(device, compilerOptions: output.compilerOptions)
        } else {
            let platform = output.targetPlatform!
            target = .platform(
                os: platform.os ?? "", arch: platform.arch ?? "", accelerator: platform.accelerator,
                compilerOptions: output.compilerOptions)
        }
        return try await Pipeline(environment: environment).compile(
            PipelineRequest(modelURI: input.s3Uri ?? "", framework: framework, dataInputConfig: input.dataInputConfig),
            target: target, outputURI: output.s3OutputLocation ?? "", progress: { progress.append($0) })
    }

    /// Renews the lease and copies stage progress into the record every `renewEvery`; reports a stop
    /// request, an expired deadline or a lost lease.
    private func monitor(_ account: String, _ name: String, deadline: Date, maxRuntime: Int, progress: StageLog) async
        -> Event
    {
        var lastRenewal = Date()
        while !Task.isCancelled {
            try? await Task.sleep(for: pollEvery)
            if Task.isCancelled { break }
            let now = Date()
            if now >= deadline { return .interrupted(.timedOut(maxRuntime)) }
            guard now.timeIntervalSince(lastRenewal) >= renewEvery else {
                if (try? store.fetch(account: account, name: name))?.stopRequested == true {
                    return .interrupted(.stopped)
                }
                continue
            }
            lastRenewal = now
            let stages = progress.records
            let renewed = try? store.update(account: account, name: name) { record in
                guard record.leaseOwner == owner else { return }
                record.leaseExpires = now.addingTimeInterval(lease)
                record.stages = stages
            }
            guard let renewed, renewed.leaseOwner == owner else { return .interrupted(.lost) }
            if renewed.stopRequested { return .interrupted(.stopped) }
        }
        return .monitorEnded
    }

    /// DerivedDataInputConfig: the input shapes the compiled artifact takes, as a DataInputConfig object.
    static func derivedConfig(_ compilation: Compilation) -> String {
        let members = compilation.manifest.inputs.map { tensor -> String in
            let key = String(decoding: (try? JSONEncoder().encode(tensor.name)) ?? Data("\"\"".utf8), as: UTF8.self)
            return "\(key): [\(tensor.shape.map(String.init).joined(separator: ", "))]"
        }
        return "{" + members.joined(separator: ", ") + "}"
    }
}

/// Stage records as they arrive from the pipeline, read by the heartbeat.
final class StageLog: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: [StageRecord] = []

    func append(_ record: StageRecord) { lock.withLock { stored.append(record) } }
    var records: [StageRecord] { lock.withLock { stored } }
}

/// A task executor with its own serial dispatch queue (so its own thread while busy): a job's
/// pipeline runs there, and a long synchronous stage blocks only that thread.
final class StageThread: TaskExecutor, @unchecked Sendable {
    private let queue: DispatchQueue

    init(label: String) { queue = DispatchQueue(label: label) }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

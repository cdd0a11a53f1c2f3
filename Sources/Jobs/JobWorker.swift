import Foundation

/// A runner process: `concurrency` slots that each claim and run queued
/// jobs, and a heartbeat that tells CLIs a runner is alive (so they do not
/// start another). With `exitWhenIdle` it ends once the queue stays empty.
public struct JobWorker: Sendable {
    public var runner: JobRunner
    public var concurrency: Int
    public var exitWhenIdle: Bool
    /// How long an idle worker waits for new jobs before exiting (`exitWhenIdle`).
    public var idleGrace: TimeInterval = 3
    public var heartbeatEvery: Duration = .seconds(2)
    public var log: @Sendable (String) -> Void
    /// Set when the worker should stop claiming jobs and end once its running ones finish.
    public let drain = DrainSignal()
    public let metrics = WorkerMetrics()

    public init(
        runner: JobRunner, concurrency: Int = 1, exitWhenIdle: Bool = false,
        log: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.runner = runner
        self.concurrency = max(1, concurrency)
        self.exitWhenIdle = exitWhenIdle
        self.log = log
    }

    /// How recent a worker's heartbeat must be for it to count as alive.
    public static let liveWithin: TimeInterval = 10
    /// A runner start reserved this recently (by any CLI) is not repeated.
    public static let startWithin: TimeInterval = 5

    public func run() async throws {
        let store = runner.store
        let id = runner.owner
        log("event=worker_start worker=\(id) slots=\(concurrency)")
        repeat {
            try store.heartbeatWorker(id: id, now: Date())
            await runSlots(id)
            try store.removeWorker(id: id)
            // A job queued while this worker was deciding to exit saw it alive and started no runner: take it.
        } while try exitWhenIdle && !drain.isDraining && store.queuedCount() > 0
        log("event=worker_exit worker=\(id)")
    }

    private func runSlots(_ id: String) async {
        let store = runner.store
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: heartbeatEvery)
                    try? store.heartbeatWorker(id: id, now: Date())
                }
                return false
            }
            for slot in 0..<concurrency {
                group.addTask {
                    await runSlot(slot)
                    return true
                }
            }
            var running = concurrency
            for await isSlot in group where isSlot {
                running -= 1
                if running == 0 { group.cancelAll() }
            }
        }
    }

    private func runSlot(_ slot: Int) async {
        var idleSince: Date?
        while !Task.isCancelled && !drain.isDraining {
            do {
                if let job = try runner.claimNext() {
                    metrics.jobStarted()
                    log("event=job_start job=\(job.name) account=\(job.account) attempt=\(job.attempts)")
                    let record = try? await runner.execute(job).record
                    metrics.jobEnded(record)
                    let seconds = record.map { ($0.endTime ?? Date()).timeIntervalSince($0.startTime ?? Date()) } ?? 0
                    log(
                        "event=job_end job=\(job.name) status=\(record?.status.rawValue ?? "?") seconds=\(String(format: "%.3f", seconds))"
                            + (record?.failureReason.isEmpty == false
                                ? " reason=\(quotedValue(record!.failureReason))" : ""))
                    idleSince = nil
                    continue
                }
            } catch {
                log("event=slot_error slot=\(slot) error=\(quotedValue("\(error)"))")
            }
            if exitWhenIdle {
                let now = Date()
                if let since = idleSince, now.timeIntervalSince(since) >= idleGrace,
                    (try? runner.store.queuedCount()) == 0
                {
                    return
                }
                if idleSince == nil { idleSince = now }
            }
            try? await Task.sleep(for: .milliseconds(300))
        }
    }
}

/// A one-way flag: once drained, a worker claims nothing more.
public final class DrainSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var draining = false

    public init() {}

    public func begin() { lock.withLock { draining = true } }
    public var isDraining: Bool { lock.withLock { draining } }
}

/// A log value in double quotes with quotes and backslashes escaped, so a line stays one key=value record.
func quotedValue(_ text: String) -> String {
    "\""
        + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        .replacingOccurrences(of: "\n", with: " ") + "\""
}

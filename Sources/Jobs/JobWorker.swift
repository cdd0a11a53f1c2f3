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
        log("worker \(id) started with \(concurrency) slot(s)")
        repeat {
            try store.heartbeatWorker(id: id, now: Date())
            await runSlots(id)
            try store.removeWorker(id: id)
            // A job queued while this worker was deciding to exit saw it alive and started no runner: take it.
        } while try exitWhenIdle && !drain.isDraining && store.queuedCount() > 0
        log("worker \(id) exiting")
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
                if let record = try await runner.runNext() {
                    log("job \(record.name): \(record.status.rawValue) \(record.failureReason)")
                    idleSince = nil
                    continue
                }
            } catch {
                log("slot \(slot): \(error)")
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

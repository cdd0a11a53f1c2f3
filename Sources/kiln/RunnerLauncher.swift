import Foundation
import Jobs
import Pipeline

#if canImport(Glibc)
    import Glibc
#endif

/// Starts a detached `kiln worker --exit-when-idle` when jobs are queued and
/// no runner is alive, so `create-compilation-job` can return at once and
/// the job still runs to its end on a machine with nothing else running.
/// `KILN_NO_AUTOSTART=1` turns this off (when a `kiln worker` or server runs jobs).
enum RunnerLauncher {
    static func ensureRunner(_ service: JobService) {
        guard ProcessInfo.processInfo.environment["KILN_NO_AUTOSTART"] == nil else { return }
        do {
            guard try service.store.queuedCount() > 0,
                try service.store.reserveRunnerStart(now: Date(), within: JobWorker.startWithin)
            else { return }
            try spawnDetachedWorker()
        } catch {
            FileHandle.standardError.write(Data("kiln: could not start a job runner: \(error)\n".utf8))
        }
    }

    private static func spawnDetachedWorker() throws {
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let home = try PipelineEnvironment.fromProcess().home.path
        let logs = home + "/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (glibc): a session of its own, so the terminal's Ctrl-C does not reach it.
        posix_spawnattr_setflags(&attributes, 0x80)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logs + "/runner.log", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of ours (a caller's pipes above all) may stay open in the runner, or a caller
        // reading this command's output to its end would wait for the runner to exit.
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let fd = Int32(entry), fd > 2 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        let slots = String(max(1, ProcessInfo.processInfo.activeProcessorCount))
        let arguments = [executable, "worker", "--exit-when-idle", "--concurrency", slots]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, &argv, environ)
        guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EIO) }
    }
}

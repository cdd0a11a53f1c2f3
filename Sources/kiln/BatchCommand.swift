import ArgumentParser
import Foundation
import Jobs

/// `kiln batch`: many CreateCompilationJob requests at once, followed to their end and reported for CI.
struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Submit a batch of compilation jobs, wait for them, and report (table, JUnit XML, JSON).")

    @Argument(help: "A directory of CreateCompilationJob JSON files, or one JSON file holding a list of them.")
    var jobs: String

    @Flag(help: "Wait for every job to end (implied by the reports).") var wait = false
    @Option(help: "Write JUnit XML here: one testcase per job, failure message = FailureReason.")
    var reportJunit: String?
    @Option(help: "Write a JSON report here.") var reportJson: String?
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let service = try store.service()
        var batch: Batch
        do {
            batch = try Batch(path: jobs)
        } catch let error as APIError {
            throw fail("kiln batch: \(error.message)")
        }
        batch.submit(with: service)
        RunnerLauncher.ensureRunner(service)
        let terminal = isatty(STDERR_FILENO) == 1
        for entry in batch.entries where entry.submitError != nil {
            progress("\(entry.name) FAILED at submission: \(entry.failureReason)")
        }
        if wait || reportJunit != nil || reportJson != nil {
            while !batch.isDone {
                try await Task.sleep(for: .milliseconds(500))
                for entry in batch.refresh(with: service) where !terminal {
                    let reason = entry.failureReason.isEmpty ? "" : "  \(entry.failureReason)"
                    progress("\(entry.name) \(entry.status) \(String(format: "%.1f", entry.seconds()))s\(reason)")
                }
                if terminal {
                    let done = batch.entries.filter(\.isFinal).count
                    let counts = batch.counts().sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
                    FileHandle.standardError.write(
                        Data("\r\u{1B}[K\(done)/\(batch.entries.count) ended: \(counts.joined(separator: ", "))".utf8))
                }
                RunnerLauncher.ensureRunner(service)
            }
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
        }
        print(batch.table())
        let counts = batch.counts().sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
        print("\(batch.entries.count) jobs: \(counts.joined(separator: ", "))")
        do {
            if let reportJunit { try batch.junit().write(toFile: reportJunit, atomically: true, encoding: .utf8) }
            if let reportJson { try batch.json().write(to: URL(fileURLWithPath: reportJson), options: .atomic) }
        } catch {
            throw fail("kiln batch: cannot write a report: \(error.localizedDescription)")
        }
        if batch.failures > 0 { throw ExitCode.failure }
    }

    private func progress(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

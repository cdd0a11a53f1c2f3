import Archive
import Diagnostics
import Foundation

/// Times each stage, turns whatever it throws into a `KilnError` of the
/// stage's category, and keeps the records in order.
struct StageRecorder {
    private(set) var records: [StageRecord] = []
    /// Test-only stretching of stages (`PipelineEnvironment.stageDelays`).
    var delays: [Stage: Double] = [:]
    /// Told of each record as it is made (a job runner shows progress with it).
    var onRecord: (@Sendable (StageRecord) -> Void)?

    private mutating func append(_ record: StageRecord) {
        records.append(record)
        onRecord?(record)
    }

    mutating func run<T>(_ stage: Stage, _ body: () throws -> T) throws -> T {
        let start = Date()
        do {
            try Task.checkCancellation()
            try stretch(stage)
            let result = try body()
            append(StageRecord(stage: stage, start: start, end: Date(), status: .completed))
            return result
        } catch {
            throw failed(stage, start, error)
        }
    }

    mutating func run<T>(_ stage: Stage, _ body: () async throws -> T) async throws -> T {
        let start = Date()
        do {
            try Task.checkCancellation()
            if let seconds = delays[stage] { try await Task.sleep(for: .seconds(seconds)) }
            let result = try await body()
            append(StageRecord(stage: stage, start: start, end: Date(), status: .completed))
            return result
        } catch {
            throw failed(stage, start, error)
        }
    }

    /// Waits out a synchronous stage's injected delay, ending early (CancellationError) when the task is
    /// cancelled. It holds its thread, as the synchronous stages themselves do.
    private func stretch(_ stage: Stage) throws {
        guard let seconds = delays[stage] else { return }
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            try Task.checkCancellation()
            usleep(10_000)
        }
    }

    /// Records a stage that ended in `error` and returns the failure to throw.
    private mutating func failed(_ stage: Stage, _ start: Date, _ error: Error) -> PipelineFailure {
        let failure = Self.kilnError(error, in: stage)
        let status: StageRecord.Status = error is CancellationError ? .stopped : .failed
        append(
            StageRecord(stage: stage, start: start, end: Date(), status: status, failureReason: failure.failureReason))
        return PipelineFailure(records: records, error: failure)
    }

    /// The reason a stage failed, in its category. Errors that are not
    /// `KilnError` yet (archive, I/O) get the category of the stage they
    /// happened in; anything unexpected is Kiln's fault.
    static func kilnError(_ error: Error, in stage: Stage) -> KilnError {
        switch error {
        case let error as KilnError:
            return error
        case let error as ArchiveError:
            switch error {
            case .io(let message):
                return .server(.internal, "\(stage.rawValue): \(message)")
            case .limitExceeded:
                return .client(
                    .inputConfiguration,
                    "cannot unpack the model archive: \(error); if the model really is this large, raise "
                        + "KILN_MAX_UNPACKED_BYTES or KILN_MAX_ARCHIVE_ENTRIES")
            case .unsafeEntry:
                return .client(
                    .inputConfiguration,
                    "cannot unpack the model archive: \(error); repack the archive without that entry")
            case .corruptGzip, .truncated, .corruptTar:
                return .client(
                    .inputConfiguration,
                    "cannot unpack the model archive: \(error); Please confirm the model is a tar.gz file")
            }
        case is CancellationError:
            return .client(.stoppingCondition, "the job was stopped during \(stage.rawValue)")
        default:
            return .server(.internal, "\(stage.rawValue) failed unexpectedly: \(String(describing: error))")
        }
    }
}

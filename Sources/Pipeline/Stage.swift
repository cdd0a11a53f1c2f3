import Diagnostics
import Foundation

/// The nine pipeline stages, by the fixed names the job record, the CLI and logs use.
public enum Stage: String, Sendable, CaseIterable, Codable {
    case fetch, unpack, parse, check, optimize, lower, build, pack, upload
}

/// What happened in one stage of one run: when, and how it ended.
public struct StageRecord: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        case completed = "Completed"
        case failed = "Failed"
        case stopped = "Stopped"
    }

    public var stage: Stage
    public var start: Date
    public var end: Date
    public var status: Status
    /// The one-line failure reason when `status` is `failed` or `stopped`.
    public var failureReason: String?

    public init(stage: Stage, start: Date, end: Date, status: Status, failureReason: String? = nil) {
        self.stage = stage
        self.start = start
        self.end = end
        self.status = status
        self.failureReason = failureReason
    }

    public var seconds: Double { end.timeIntervalSince(start) }
}

/// A run that stopped at a stage: the records so far (the last one failed) and why.
public struct PipelineFailure: Error, Sendable {
    public var records: [StageRecord]
    public var error: KilnError

    public var failureReason: String { error.failureReason }

    public init(records: [StageRecord], error: KilnError) {
        self.records = records
        self.error = error
    }
}

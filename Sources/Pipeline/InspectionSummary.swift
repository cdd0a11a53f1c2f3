import Foundation
import ModelIR

/// The printable, JSON-encodable view of an inspection: what `kiln inspect` shows.
public struct InspectionSummary: Codable, Sendable {
    public struct Tensor: Codable, Sendable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
    }

    public struct Stage: Codable, Sendable {
        public var stage: String
        public var status: String
        public var seconds: Double
        public var failureReason: String?
    }

    public var modelFile: String?
    public var irVersion: Int?
    public var opset: Int?
    public var originalOpset: Int?
    public var producer: String?
    public var inputs: [Tensor]
    public var outputs: [Tensor]
    public var parameterCount: Int?
    public var parameterBytes: Int?
    public var ops: [String: Int]
    public var notes: [String]
    public var stages: [Stage]
    public var failureReason: String?

    public init(_ inspection: Inspection) {
        let model = inspection.checked.model
        let graph = model.graph
        func tensor(_ id: ValueID) -> Tensor {
            let value = graph[id]
            return Tensor(
                name: value.name, dtype: value.type?.dataType.name ?? "?", shape: value.type?.staticShape ?? [])
        }
        modelFile = inspection.modelFile
        irVersion = model.irVersion
        opset = model.opset
        originalOpset = inspection.checked.originalOpset
        producer = model.producer
        inputs = graph.inputs.map(tensor)
        outputs = graph.outputs.map(tensor)
        let totals = graph.parameterTotals
        parameterCount = totals.count
        parameterBytes = totals.bytes
        ops = graph.opHistogram
        notes = inspection.checked.notes
        stages = inspection.records.map(Self.stage)
        failureReason = nil
    }

    public init(_ failure: PipelineFailure) {
        inputs = []
        outputs = []
        ops = [:]
        notes = []
        stages = failure.records.map(Self.stage)
        failureReason = failure.failureReason
    }

    public static func stage(_ record: StageRecord) -> Stage {
        Stage(
            stage: record.stage.rawValue, status: record.status.rawValue, seconds: record.seconds,
            failureReason: record.failureReason)
    }
}

/// Kiln's own version, shown by `kiln --version` and written into artifacts.
public enum KilnVersion {
    public static let current = "0.1.0"
}

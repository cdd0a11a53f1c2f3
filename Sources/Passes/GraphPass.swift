import ModelIR

/// One graph rewrite of the optimize stage: a name and a function that rewrites the graph in place and
/// says how many places it changed. A pass must keep every valid graph valid and its results equal
/// within float rounding.
public struct GraphPass: Sendable {
    public let name: String
    public let run: @Sendable (inout Graph) -> Int

    public init(name: String, run: @escaping @Sendable (inout Graph) -> Int) {
        self.name = name
        self.run = run
    }
}

/// The passes the optimize stage runs, in order, one line each.
public enum PassManager {
    public static let standard: [GraphPass] = [
        .foldBatchNormalization, .fuseConvEpilogue, .channelsLast,
    ]

    /// The standard passes, without layout selection when the activations stay in the model's NCHW.
    public static func standard(channelsLast: Bool) -> [GraphPass] {
        channelsLast ? standard : standard.filter { $0.name != GraphPass.channelsLast.name }
    }

    /// Runs `passes` over the model's graph; what each changed, for the manifest ("name: count").
    public static func optimize(_ model: Model, passes: [GraphPass] = standard) -> (Model, [String]) {
        var model = model
        var applied: [String] = []
        for pass in passes {
            let changed = pass.run(&model.graph)
            if changed > 0 { applied.append("\(pass.name): \(changed)") }
        }
        return (model, applied)
    }
}

extension Graph {
    /// For the passes: which node computes each value, and how many readers each value has (nodes, their
    /// guards, and the graph's outputs).
    func producersAndUses() -> (producer: [ValueID: Int], uses: [ValueID: Int]) {
        var producer: [ValueID: Int] = [:]
        var uses: [ValueID: Int] = [:]
        for (index, node) in nodes.enumerated() {
            for case let id? in node.outputs { producer[id] = index }
            for id in node.reads { uses[id, default: 0] += 1 }
        }
        for id in outputs { uses[id, default: 0] += 1 }
        return (producer, uses)
    }
}

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
        .foldBatchNormalization
    ]

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

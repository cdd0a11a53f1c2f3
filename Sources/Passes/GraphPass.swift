import ModelIR

/// One graph rewrite of the optimize stage: a name and a function that rewrites the graph in place and
/// says how many places it changed. A pass must keep every valid graph valid and its results equal
/// within float rounding.
public struct GraphPass: Sendable {
    public let name: String
    public let run: @Sendable (inout Graph, PassContext) -> Int

    public init(name: String, run: @escaping @Sendable (inout Graph, PassContext) -> Int) {
        self.name = name
        self.run = run
    }
}

/// What the passes' cost model knows of the CPU the code is for: the passes stay target-neutral, and
/// where a rewrite pays depends only on these numbers.
public struct PassContext: Sendable {
    /// Bytes of L2 cache per core.
    public var l2CacheBytes: Int
    /// The model's ONNX opset, where an op's meaning changed between opsets (Softmax's axis); set by
    /// `PassManager.optimize` from the model.
    public var opset: Int

    public init(l2CacheBytes: Int, opset: Int = 17) {
        self.l2CacheBytes = l2CacheBytes
        self.opset = opset
    }

    /// A CPU nothing is known of: the smallest L2 among the x86 targets (Zen 2 and 3).
    public static let standard = PassContext(l2CacheBytes: 512 << 10)
}

/// The passes the optimize stage runs, in order, one line each.
public enum PassManager {
    public static let standard: [GraphPass] = [
        .foldConstants, .eliminateIdentities, .eliminateCommonSubexpressions, .cancelTransposes, .eliminateDeadCode,
        .foldBatchNormalization, .fuseLayerNorm, .fuseGelu, .fuseAttention, .fuseConvEpilogue, .fuseMatMulEpilogue,
        .channelsLast,
        .fuseExpandDepthwise, .fuseElementwise,
    ]

    /// The standard passes, without layout selection when the activations stay in the model's NCHW.
    public static func standard(channelsLast: Bool) -> [GraphPass] {
        channelsLast ? standard : standard.filter { $0.name != GraphPass.channelsLast.name }
    }

    /// Runs `passes` over the model's graph; what each changed, for the manifest ("name: count").
    public static func optimize(_ model: Model, passes: [GraphPass] = standard, context: PassContext = .standard)
        -> (Model, [String])
    {
        var model = model
        var context = context
        context.opset = model.opset
        var applied: [String] = []
        for pass in passes {
            let changed = pass.run(&model.graph, context)
            if changed > 0 { applied.append("\(pass.name): \(changed)") }
        }
        return (model, applied)
    }
}

/// What an epilogue-fusion pass keeps while it sweeps the nodes in order: each value's producer and its
/// number of readers, and the nodes already merged into a later one (dropped at the end).
struct FusionState {
    var producer: [ValueID: Int]
    var uses: [ValueID: Int]
    var removed: Set<Int> = []
    var fused = 0

    init(_ graph: Graph) { (producer, uses) = graph.producersAndUses() }

    /// The node at `index`, if it produces `value`, `value` has no other reader and it was not merged away.
    func soleProducer(of value: ValueID?) -> Int? {
        guard let value, uses[value] == 1, let index = producer[value], !removed.contains(index) else { return nil }
        return index
    }

    /// Puts `node` (the product that was at `from`, now doing its consumer's work too) in the place of the
    /// consumer at `into`, with the consumer's outputs: everything it reads is computed by then.
    mutating func merge(_ node: Node, from: Int, into: Int, in graph: inout Graph) {
        var node = node
        node.outputs = graph.nodes[into].outputs
        graph.nodes[into] = node
        for case let id? in node.outputs { producer[id] = into }
        removed.insert(from)
        fused += 1
    }

    /// SiLU, `Mul(c, Sigmoid(c))` with the operands either way round, where c's only readers are those two:
    /// c and the Sigmoid's index. (c counts two readers until the Sigmoid is merged away.)
    func silu(_ node: Node, in graph: Graph) -> (value: ValueID, sigmoid: Int)? {
        guard node.opType == "Mul", node.isDefaultDomain, node.guards.isEmpty, node.inputs.count == 2,
            node.outputs.count == 1, let output = node.outputs[0]
        else { return nil }
        for slot in 0..<2 {
            guard let c = node.inputs[slot], let sigmoid = soleProducer(of: node.inputs[1 - slot]),
                graph.nodes[sigmoid].opType == "Sigmoid", graph.nodes[sigmoid].isDefaultDomain,
                graph.nodes[sigmoid].guards.isEmpty, graph.nodes[sigmoid].inputs == [c], uses[c] == 2,
                graph[c].type == graph[output].type
            else { continue }
            return (c, sigmoid)
        }
        return nil
    }

    /// Drops the merged nodes; returns how many consumers were taken in.
    func finish(_ graph: inout Graph) -> Int {
        graph.removeNodes(at: removed)
        return fused
    }
}

extension Graph {
    /// Whether some node carries a subgraph (Loop, Scan bodies): those may read outer values by name, which
    /// the passes that rename or drop values cannot see, so such graphs are left to the passes that do not.
    var hasSubgraphs: Bool {
        nodes.contains { node in
            node.attributes.values.contains {
                switch $0 {
                case .graph, .graphs: true
                default: false
                }
            }
        }
    }

    /// Drops the nodes at `indices` (positions in `nodes`), keeping the others in order.
    mutating func removeNodes(at indices: Set<Int>) {
        guard !indices.isEmpty else { return }
        nodes = nodes.enumerated().filter { !indices.contains($0.offset) }.map(\.element)
    }

    /// Points every reader of `old` (node inputs and guards) at `new`; `old` must not be a graph output.
    mutating func replaceUses(of old: ValueID, with new: ValueID) {
        for index in nodes.indices {
            nodes[index].inputs = nodes[index].inputs.map { $0 == old ? new : $0 }
            for slot in nodes[index].guards.indices where nodes[index].guards[slot].condition == old {
                nodes[index].guards[slot].condition = new
            }
        }
    }

    /// The value `id` holds when it is a float constant of one element (a scale, a bound).
    func scalarFloat(_ id: ValueID?) -> Double? {
        guard let id, let constant = initializers[id], constant.dataType == .float32, constant.elementCount == 1
        else { return nil }
        return constant.doubles()?.first
    }

    /// A Clip's bounds when they are known at compile time (opset 11+: optional constant inputs; before:
    /// attributes), missing ones unbounded; nil when a bound is computed at run time.
    func constantClipBounds(_ node: Node) -> (lo: Float, hi: Float)? {
        func bound(_ slot: Int, _ attribute: String, _ fallback: Float) -> Float? {
            if let value = node.float(attribute) { return value }
            guard node.inputs.count > slot, let id = node.inputs[slot] else { return fallback }
            return scalarFloat(id).map(Float.init)
        }
        guard let lo = bound(1, "min", -.infinity), let hi = bound(2, "max", .infinity) else { return nil }
        return (lo, hi)
    }

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

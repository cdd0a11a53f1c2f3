import ModelIR

extension GraphPass {
    /// Chains (and trees) of float elementwise nodes become one `kiln::FusedElementwise`, whose `body`
    /// attribute holds them as a graph over the fused node's inputs: one loop over the output computes
    /// every step into locals, where each node was a pass over memory. SiLU, `Mul(x, Sigmoid(x))`, is the
    /// common case (YOLO-style detectors have one after every convolution); HardSwish written out, a
    /// `Div`/`Add`/`Mul` scaling, and activations after a bias the epilogue fusions could not take are
    /// others. A node is taken into its reader when its output has that one reader (no other node, not a
    /// graph output) and the same static shape as the reader's output, so that every step runs over the
    /// same elements; the inputs from outside may broadcast. Runs last, after the fusions into products
    /// and convolutions have taken what they can and the layout is chosen. Counts the nodes merged away.
    public static let fuseElementwise = GraphPass(name: "fuse-elementwise") { graph, _ in
        let (producer, uses) = graph.producersAndUses()
        /// For the node that ends each group so far: the group's nodes, in graph order.
        var groups: [Int: [Int]] = [:]
        var merged: Set<Int> = []
        for (index, node) in graph.nodes.enumerated() where ElementwiseFusion.fusible(node, in: graph) {
            let shape = node.outputs[0].flatMap { graph[$0].type?.staticShape }
            var members: [Int] = []
            for case let input? in node.inputs {
                guard uses[input] == 1, let source = producer[input], !merged.contains(source),
                    ElementwiseFusion.fusible(graph.nodes[source], in: graph), graph[input].type?.staticShape == shape
                else { continue }
                members += groups.removeValue(forKey: source) ?? [source]
                merged.insert(source)
            }
            if !members.isEmpty { groups[index] = members.sorted() + [index] }
        }
        for (last, members) in groups {
            let nodes = members.map { graph.nodes[$0] }
            let produced = Set(nodes.compactMap { $0.outputs[0] })
            var inputs: [ValueID] = []
            for node in nodes {
                for case let id? in node.inputs where !produced.contains(id) && !inputs.contains(id) {
                    inputs.append(id)
                }
            }
            var body = Graph(name: "fused elementwise")
            var inner: [ValueID: ValueID] = [:]
            for id in inputs { inner[id] = body.addValue(graph[id]) }
            body.inputs = inputs.map { inner[$0]! }
            for original in nodes {
                var node = original
                node.inputs = original.inputs.map { $0.flatMap { inner[$0] } }
                let output = body.addValue(graph[original.outputs[0]!])
                inner[original.outputs[0]!] = output
                node.outputs = [output]
                body.nodes.append(node)
            }
            let final = graph.nodes[last]
            body.outputs = [inner[final.outputs[0]!]!]
            graph.nodes[last] = Node(
                name: final.name, opType: "FusedElementwise", domain: "kiln", inputs: inputs, outputs: final.outputs,
                attributes: ["body": .graph(body)])
        }
        graph.removeNodes(at: merged)
        return merged.count
    }
}

/// Which nodes `fuse-elementwise` takes: what the backend can compute as one expression per element.
public enum ElementwiseFusion {
    /// One float in, one float out.
    public static let unary: Set<String> = [
        "Relu", "Neg", "Abs", "Sign", "Exp", "Log", "Sqrt", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh",
        "Cosh", "Asinh", "Acosh", "Atanh", "Erf", "Floor", "Ceil", "Round", "Reciprocal", "Sigmoid", "Tanh",
        "Softplus", "Softsign", "LeakyRelu", "Elu", "Selu", "Celu", "ThresholdedRelu", "Shrink", "HardSigmoid",
        "HardSwish", "Gelu", "Mish",
    ]
    /// Two floats in, broadcast, one float out.
    public static let binary: Set<String> = ["Add", "Sub", "Mul", "Div", "Pow", "PRelu"]

    /// Whether `node` is one of those ops (or `kiln::Gelu`) on float32 with static shapes, unguarded.
    static func fusible(_ node: Node, in graph: Graph) -> Bool {
        let op = node.qualifiedOpType == "kiln::Gelu" ? "Gelu" : node.isDefaultDomain ? node.opType : ""
        let arity = unary.contains(op) ? 1 : binary.contains(op) ? 2 : 0
        guard arity > 0, node.guards.isEmpty, node.inputs.count == arity, node.outputs.count == 1 else { return false }
        return (node.inputs + node.outputs).allSatisfy { id in
            id.map { graph[$0].type?.dataType == .float32 && graph[$0].type?.staticShape != nil } ?? false
        }
    }
}

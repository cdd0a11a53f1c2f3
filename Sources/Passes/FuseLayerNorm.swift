import ModelIR

extension GraphPass {
    /// LayerNorm as exporters write it before opset 17 (PyTorch's `nn.LayerNorm`):
    /// `d = x − ReduceMean(x)`, `Div(d, Sqrt(ReduceMean(Pow(d, 2)) + ε))`, then `Mul` by a constant γ and `Add`
    /// of a constant β (each optional), the means over the last axis with their dimension kept, becomes one
    /// `LayerNormalization(x, γ, β)` over the last axis: one vectorised kernel pass per row (mean, variance and
    /// the scaled output) instead of eight elementwise and reducing ones. `Mul(d, d)` counts as the square. The
    /// inner nodes must have no other readers. Counts the patterns it replaced.
    public static let fuseLayerNorm = GraphPass(name: "fuse-layer-norm") { graph, _ in
        let (producer, uses) = graph.producersAndUses()
        var removed: Set<Int> = []
        var fused = 0

        /// The node producing `id` if it is the default-domain `op`, unguarded, read by `readers` nodes.
        func node(_ id: ValueID?, _ op: String, readers: Set<Int> = [1]) -> (index: Int, node: Node)? {
            guard let id, readers.contains(uses[id] ?? 0), let index = producer[id], !removed.contains(index) else {
                return nil
            }
            let node = graph.nodes[index]
            guard node.opType == op, node.isDefaultDomain, node.guards.isEmpty, node.outputs.count == 1 else {
                return nil
            }
            return (index, node)
        }
        /// A float constant of `count` elements (1: a scalar) `id` holds.
        func constant(_ id: ValueID?, count: Int) -> [Double]? {
            guard let id, let value = graph.initializers[id], value.dataType == .float32, value.elementCount == count,
                value.shape.dropLast().allSatisfy({ $0 == 1 })
            else { return nil }
            return value.doubles()
        }
        /// Whether `mean` is a ReduceMean over the last axis only (of rank `rank`), keeping it.
        func meanOverLastAxis(_ mean: Node, rank: Int) -> Bool {
            guard (mean.int("keepdims") ?? 1) == 1, mean.inputs.count <= 2 else { return false }
            let axes =
                mean.ints("axes")
                ?? (mean.inputs.count == 2 ? mean.inputs[1].flatMap { graph.initializers[$0]?.integers() } : nil)
            return axes == [-1] || axes == [rank - 1]
        }

        for index in graph.nodes.indices {
            let division = graph.nodes[index]
            guard division.opType == "Div", division.isDefaultDomain, division.guards.isEmpty,
                division.inputs.count == 2, let output = division.outputs[0],
                graph[output].type?.dataType == .float32, let shape = graph[output].type?.staticShape,
                let width = shape.last, width > 0,
                let difference = node(division.inputs[0], "Sub", readers: [2, 3]),
                let root = node(division.inputs[1], "Sqrt"),
                let plus = node(root.node.inputs[0], "Add"),
                let x = difference.node.inputs[0], graph[x].type?.staticShape == shape,
                let mean = node(difference.node.inputs[1], "ReduceMean"), mean.node.inputs[0] == x,
                meanOverLastAxis(mean.node, rank: shape.count)
            else { continue }
            // Add(variance, ε) with ε in either slot; the variance the mean of d's square.
            let epsilonSlot = constant(plus.node.inputs[1], count: 1) != nil ? 1 : 0
            guard let epsilon = constant(plus.node.inputs[epsilonSlot], count: 1)?.first,
                let variance = node(plus.node.inputs[1 - epsilonSlot], "ReduceMean"),
                meanOverLastAxis(variance.node, rank: shape.count),
                let square = node(variance.node.inputs[0], "Pow") ?? node(variance.node.inputs[0], "Mul"),
                square.node.inputs[0] == division.inputs[0],
                square.node.opType == "Mul"
                    ? square.node.inputs[1] == division.inputs[0]
                    : constant(square.node.inputs[1], count: 1) == [2]
            else { continue }
            // d's readers: the square (twice when it is Mul(d, d)) and the division, nothing else.
            guard uses[division.inputs[0]!] == (square.node.opType == "Mul" ? 3 : 2) else { continue }
            var parts = [difference.index, root.index, plus.index, mean.index, variance.index, square.index]
            // Then Mul by γ and Add of β, each optional, each the one reader of what it takes.
            var last = (index: index, output: output)
            var gamma: ValueID?
            var beta: ValueID?
            func affine(_ op: String) -> (index: Int, output: ValueID, operand: ValueID)? {
                guard uses[last.output] == 1,
                    let next = graph.nodes.indices.first(where: {
                        !removed.contains($0) && graph.nodes[$0].inputs.contains(last.output)
                    })
                else { return nil }
                let node = graph.nodes[next]
                guard node.opType == op, node.isDefaultDomain, node.guards.isEmpty, node.inputs.count == 2,
                    let result = node.outputs[0], graph[result].type?.staticShape == shape
                else { return nil }
                let slot = node.inputs[0] == last.output ? 1 : 0
                guard let operand = node.inputs[slot], constant(operand, count: width) != nil else { return nil }
                return (next, result, operand)
            }
            if let scaled = affine("Mul") {
                parts.append(last.index)
                last = (scaled.index, scaled.output)
                gamma = scaled.operand
            }
            if let shifted = affine("Add") {
                parts.append(last.index)
                last = (shifted.index, shifted.output)
                beta = shifted.operand
            }
            let scale = FuseLayerNorm.vector(gamma, width: width, in: &graph, name: division.name + "/gamma")
            let bias = beta.map { FuseLayerNorm.vector($0, width: width, in: &graph, name: division.name + "/beta") }
            graph.nodes[last.index] = Node(
                name: division.name, opType: "LayerNormalization", domain: "", inputs: [x, scale, bias],
                outputs: [last.output], attributes: ["axis": .int(-1), "epsilon": .float(Float(epsilon))])
            removed.formUnion(parts)
            fused += 1
        }
        graph.removeNodes(at: removed)
        return fused
    }
}

enum FuseLayerNorm {
    /// γ or β as the [width] vector LayerNormalization takes (ones when the pattern had no γ).
    static func vector(_ id: ValueID?, width: Int, in graph: inout Graph, name: String) -> ValueID {
        if let id, let constant = graph.initializers[id], constant.shape == [width] { return id }
        let values = id.flatMap { graph.initializers[$0]?.doubles() }.map { $0.map(Float.init) }
        let vector = graph.addValue(Value(name: name, type: TensorType(.float32, static: [width])))
        graph.initializers[vector] = Constant(float32: values ?? Array(repeating: 1, count: width), shape: [width])
        return vector
    }
}

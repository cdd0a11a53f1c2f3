import ModelIR

extension GraphPass {
    /// GELU as models export it, `Mul(Mul(h, 0.5), Add(Erf(Div(h, √2)), 1))` (operands of Mul and Add in
    /// either order, `Mul(h, 1/√2)` for the Div), becomes one `kiln::Gelu(h)`: one pass over the
    /// activations instead of five, and an activation `fuse-matmul-epilogue` can take into a product's
    /// stores. The four inner nodes must have no other readers. Counts the patterns it replaced.
    public static let fuseGelu = GraphPass(name: "fuse-gelu") { graph, _ in
        let (producer, uses) = graph.producersAndUses()
        var removed: Set<Int> = []
        var fused = 0

        func isONNX(_ node: Node, _ op: String) -> Bool {
            node.opType == op && node.isDefaultDomain && node.guards.isEmpty
                && node.inputs.count == 2 && node.outputs.count == 1
        }
        func scalar(_ id: ValueID?) -> Double? { graph.scalarFloat(id) }
        func close(_ value: Double?, _ expected: Double) -> Bool {
            value.map { abs($0 - expected) <= 1e-6 * expected } ?? false
        }
        /// The single-reader node producing `id` that is `op`, and the index of its non-constant operand
        /// when the other is a scalar meeting `test`.
        func node(_ id: ValueID?, _ op: String, other test: (Double?) -> Bool) -> (index: Int, operand: ValueID)? {
            guard let id, uses[id] == 1, let index = producer[id], !removed.contains(index),
                isONNX(graph.nodes[index], op)
            else { return nil }
            let inputs = graph.nodes[index].inputs
            for slot in 0..<2 where test(scalar(inputs[1 - slot])) && scalar(inputs[slot]) == nil {
                if let operand = inputs[slot] { return (index, operand) }
            }
            return nil
        }

        for index in graph.nodes.indices where isONNX(graph.nodes[index], "Mul") {
            let final = graph.nodes[index]
            guard let output = final.outputs[0], graph[output].type?.dataType == .float32 else { continue }
            for slot in 0..<2 {
                // Mul(h, 0.5) on one side; Add(Erf(h / √2), 1) on the other.
                guard let half = node(final.inputs[slot], "Mul", other: { close($0, 0.5) }),
                    let plus = node(final.inputs[1 - slot], "Add", other: { close($0, 1) }),
                    let erfIndex = producer[plus.operand], uses[plus.operand] == 1, !removed.contains(erfIndex)
                else { continue }
                let erf = graph.nodes[erfIndex]
                guard erf.opType == "Erf", erf.isDefaultDomain, erf.guards.isEmpty,
                    erf.inputs.count == 1
                else { continue }
                let scaled =
                    node(erf.inputs[0], "Div", other: { close($0, 2.0.squareRoot()) })
                    ?? node(erf.inputs[0], "Mul", other: { close($0, 0.5.squareRoot()) })
                guard let scaled, scaled.operand == half.operand,
                    // A Div's divisor must be the constant: Div(√2, h) is not h / √2.
                    graph.nodes[scaled.index].opType != "Div" || graph.nodes[scaled.index].inputs[0] == half.operand
                else { continue }
                graph.nodes[index] = Node(
                    name: final.name, opType: "Gelu", domain: "kiln", inputs: [half.operand], outputs: final.outputs)
                removed.formUnion([half.index, plus.index, erfIndex, scaled.index])
                fused += 1
                break
            }
        }
        graph.removeNodes(at: removed)
        return fused
    }
}

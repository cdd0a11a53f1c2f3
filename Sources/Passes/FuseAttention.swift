import ModelIR

extension GraphPass {
    /// Scaled dot-product attention as models export it, `MatMul(Softmax(Add(Mul(MatMul(Q, Kᵀ), c), mask)), V)`
    /// (the scale `Mul` by a scalar constant c or `Div` by one, and the mask `Add`, each optional; operands of
    /// Mul and Add in either order), becomes one `kiln::Attention(Q, Kᵀ, V, mask)` with attribute `scale`.
    /// Its kernel takes a block of query rows at a time through all four steps while their scores are in
    /// L1, where the unfused graph made four passes over every score in memory. The Softmax must be over
    /// the scores' last axis; the mask must broadcast to the scores' shape (it is typically
    /// `[batch, 1, 1, keys]`); every operand is float and of rank 2 or more; the inner values must have no
    /// other readers. Counts the patterns it replaced.
    public static let fuseAttention = GraphPass(name: "fuse-attention") { graph, context in
        let (producer, uses) = graph.producersAndUses()
        var removed: Set<Int> = []
        var fused = 0

        /// The node computing `id` if it is an ONNX `op` on floats whose only reader is the pattern.
        func sole(_ id: ValueID?, _ op: String) -> Int? {
            guard let id, uses[id] == 1, let index = producer[id], !removed.contains(index) else { return nil }
            let node = graph.nodes[index]
            guard node.opType == op, node.isDefaultDomain, node.guards.isEmpty, node.outputs.count == 1,
                graph[id].type?.dataType == .float32
            else { return nil }
            return index
        }
        func scalar(_ id: ValueID?) -> Float? { graph.scalarFloat(id).map(Float.init) }
        func shape(_ id: ValueID?) -> [Int]? { id.flatMap { graph[$0].type?.staticShape } }

        /// Q, Kᵀ, the scale and the nodes from the scores' MatMul to `value` (a scaled product or the product).
        func scaledProduct(_ value: ValueID) -> (q: ValueID, kt: ValueID, scale: Float, nodes: [Int])? {
            var (current, scale, nodes) = (value, Float(1), [Int]())
            if let index = sole(current, "Mul") {
                let inputs = graph.nodes[index].inputs
                guard inputs.count == 2, let slot = (0..<2).first(where: { scalar(inputs[1 - $0]) != nil }),
                    let operand = inputs[slot]
                else { return nil }
                (current, scale, nodes) = (operand, scalar(inputs[1 - slot])!, [index])
            } else if let index = sole(current, "Div") {
                let inputs = graph.nodes[index].inputs
                guard inputs.count == 2, let operand = inputs[0], let divisor = scalar(inputs[1]), divisor != 0 else {
                    return nil
                }
                (current, scale, nodes) = (operand, 1 / divisor, [index])
            }
            guard let index = sole(current, "MatMul"), graph.nodes[index].inputs.count == 2,
                let q = graph.nodes[index].inputs[0], let kt = graph.nodes[index].inputs[1]
            else { return nil }
            return (q, kt, scale, nodes + [index])
        }

        for index in graph.nodes.indices {
            let final = graph.nodes[index]
            guard final.opType == "MatMul", final.isDefaultDomain, final.guards.isEmpty, final.inputs.count == 2,
                final.outputs.count == 1, let v = final.inputs[1], let output = final.outputs[0],
                graph[output].type?.dataType == .float32, let softmaxIndex = sole(final.inputs[0], "Softmax"),
                let scores = graph.nodes[softmaxIndex].inputs.first ?? nil, let scoresShape = shape(scores),
                scoresShape.count >= 2
            else { continue }
            let axis = graph.nodes[softmaxIndex].int("axis") ?? (context.opset >= 13 ? -1 : 1)
            guard axis == -1 || axis == scoresShape.count - 1 else { continue }

            var found: (q: ValueID, kt: ValueID, scale: Float, nodes: [Int])?
            var mask: ValueID?
            if let addIndex = sole(scores, "Add") {
                let inputs = graph.nodes[addIndex].inputs
                for slot in 0..<2 where found == nil && inputs.count == 2 {
                    guard let candidate = inputs[slot], let other = inputs[1 - slot],
                        let product = scaledProduct(candidate),
                        graph[other].type?.dataType == .float32, let maskShape = shape(other),
                        maskShape.count <= scoresShape.count,
                        zip(maskShape.reversed(), scoresShape.reversed()).allSatisfy({ $0 == 1 || $0 == $1 })
                    else { continue }
                    (found, mask) = (product, other)
                    found!.nodes.append(addIndex)
                }
            } else {
                found = scaledProduct(scores)
            }
            guard let found, let qs = shape(found.q), let ks = shape(found.kt), let vs = shape(v),
                let outputShape = shape(output), qs.count >= 2, ks.count >= 2, vs.count >= 2,
                outputShape.count == scoresShape.count,
                [qs, ks, vs].allSatisfy({ $0.count <= scoresShape.count }),
                // Q, Kᵀ and V broadcast to the scores' batch dims, which are the output's.
                Array(outputShape.dropLast(2)) == Array(scoresShape.dropLast(2)),
                [qs, ks, vs].allSatisfy({ operand in
                    zip(operand.dropLast(2).reversed(), scoresShape.dropLast(2).reversed()).allSatisfy {
                        $0 == 1 || $0 == $1
                    }
                })
            else { continue }
            graph.nodes[index] = Node(
                name: final.name, opType: "Attention", domain: "kiln",
                inputs: [found.q, found.kt, v] + (mask.map { [$0] } ?? []), outputs: final.outputs,
                attributes: ["scale": .float(found.scale)])
            removed.formUnion(found.nodes + [softmaxIndex])
            fused += 1
        }
        graph.removeNodes(at: removed)
        return fused
    }
}

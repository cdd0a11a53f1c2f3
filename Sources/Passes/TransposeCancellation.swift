import ModelIR

extension GraphPass {
    /// Data movement that undoes or repeats itself: a `Transpose` of a `Transpose` becomes one transpose of
    /// the inner one's input by the composed permutation, or none when that is the identity; a chain of
    /// `Reshape`, `Flatten`, `Squeeze` and `Unsqueeze` becomes one `Reshape` of the first one's input to the
    /// last one's static shape. Exported attention and channel-shuffle blocks carry such pairs. The inner node
    /// stays for any other reader (never more work than before) and `eliminate-dead-code`, after this pass,
    /// drops it when none is left. Counts the nodes rewritten or removed.
    public static let cancelTransposes = GraphPass(name: "cancel-transposes") { graph, _ in
        guard !graph.hasSubgraphs else { return 0 }
        let (producer, _) = graph.producersAndUses()
        let outputs = Set(graph.outputs)
        var changed = 0
        var removed: Set<Int> = []
        for index in graph.nodes.indices {
            let node = graph.nodes[index]
            guard node.isDefaultDomain, node.guards.isEmpty, node.outputs.count == 1, let y = node.outputs[0],
                let x = node.inputs.first ?? nil, let innerIndex = producer[x]
            else { continue }
            let inner = graph.nodes[innerIndex]
            guard inner.isDefaultDomain, inner.guards.isEmpty, let source = inner.inputs.first ?? nil,
                let rank = graph[source].type?.staticShape?.count
            else { continue }
            if node.opType == "Transpose", inner.opType == "Transpose" {
                let p1 = inner.ints("perm") ?? Array((0..<rank).reversed())
                let p2 = node.ints("perm") ?? Array((0..<rank).reversed())
                guard p1.count == rank, p2.count == rank, p2.allSatisfy({ (0..<rank).contains($0) }) else { continue }
                let composed = p2.map { p1[$0] }
                if composed == Array(0..<rank), !outputs.contains(y) {
                    graph.replaceUses(of: y, with: source)
                    removed.insert(index)
                } else {
                    graph.nodes[index].inputs[0] = source
                    graph.nodes[index].attributes["perm"] = .ints(composed)
                }
                changed += 1
            } else if TransposeCancellation.reshapes.contains(node.opType),
                TransposeCancellation.reshapes.contains(inner.opType),
                let shape = graph[y].type?.staticShape, !shape.contains(0)
            {
                // (A 0 in Reshape's shape copies the input's dimension: a dimension of 0 keeps its nodes.)
                let target = graph.addValue(
                    Value(name: node.name + "/shape", type: TensorType(.int64, static: [shape.count])))
                graph.initializers[target] = Constant(.int64, shape: [shape.count], values: shape.map { Int64($0) })
                graph.nodes[index] = Node(
                    name: node.name, opType: "Reshape", domain: "", inputs: [source, target], outputs: [y],
                    attributes: [:])
                changed += 1
            }
        }
        graph.removeNodes(at: removed)
        return changed
    }
}

enum TransposeCancellation {
    /// Operators that only give the same bytes another shape.
    static let reshapes: Set<String> = ["Reshape", "Flatten", "Squeeze", "Unsqueeze"]
}

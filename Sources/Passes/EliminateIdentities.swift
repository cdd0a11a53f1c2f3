import ModelIR

extension GraphPass {
    /// Nodes that hand their input on unchanged: `Identity`, inference-mode `Dropout` (no training-mode
    /// input, its mask unread), and a `Reshape`, `Flatten`, `Squeeze` or `Unsqueeze` whose static output shape
    /// is its input's. Their readers read the input instead, and the copy they would have made is gone
    /// (exported models carry many: PyTorch's `Identity` for shared parameters, `Dropout` left in a graph).
    /// A node whose output is a graph output stays (the output keeps its name). Counts the nodes removed.
    public static let eliminateIdentities = GraphPass(name: "eliminate-identities") { graph, _ in
        guard !graph.hasSubgraphs else { return 0 }
        let (_, uses) = graph.producersAndUses()
        let outputs = Set(graph.outputs)
        var removed: Set<Int> = []
        for index in graph.nodes.indices {
            // Read afresh: an earlier removal may have pointed this node's input elsewhere.
            let node = graph.nodes[index]
            guard node.isDefaultDomain, node.guards.isEmpty, let x = node.inputs.first ?? nil,
                let y = node.outputs.first ?? nil, !outputs.contains(y),
                graph.initializers[y] == nil, graph[x].type?.dataType == graph[y].type?.dataType
            else { continue }
            let passesOn: Bool
            switch node.opType {
            case "Identity":
                passesOn = node.outputs.count == 1
            case "Dropout":
                let mask = node.outputs.count > 1 ? node.outputs[1] : nil
                passesOn = (node.inputs.count < 3 || node.inputs[2] == nil) && mask.map { uses[$0] == nil } ?? true
            case _ where TransposeCancellation.reshapes.contains(node.opType):
                let shape = graph[y].type?.staticShape
                passesOn = node.outputs.count == 1 && shape != nil && shape == graph[x].type?.staticShape
            default:
                passesOn = false
            }
            guard passesOn else { continue }
            graph.replaceUses(of: y, with: x)
            removed.insert(index)
        }
        graph.removeNodes(at: removed)
        return removed.count
    }
}

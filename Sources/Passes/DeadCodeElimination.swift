import ModelIR

extension GraphPass {
    /// Nodes none of whose outputs anything reads (no node, no guard, not a graph output), last to first so a
    /// chain that fed only dead nodes goes too: branches an exporter left behind, and what the passes before
    /// made unread. ONNX operators have no side effects, so nothing else depends on them. Counts the nodes
    /// removed.
    public static let eliminateDeadCode = GraphPass(name: "eliminate-dead-code") { graph, _ in
        guard !graph.hasSubgraphs else { return 0 }
        var live = Set(graph.outputs)
        var kept: [Node] = []
        var removed = 0
        for node in graph.nodes.reversed() {
            guard node.outputs.contains(where: { $0.map(live.contains) ?? false }) else {
                removed += 1
                continue
            }
            live.formUnion(node.reads)
            kept.append(node)
        }
        graph.nodes = kept.reversed()
        return removed
    }
}

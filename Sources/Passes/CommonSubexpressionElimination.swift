import ModelIR

extension GraphPass {
    /// A node that repeats an earlier one (same operator, attributes, inputs and guards) is dropped and its
    /// readers read the earlier node's outputs: exporters repeat `Shape`/`Gather`/`Unsqueeze` chains and
    /// `Constant`s once per use, and a model may apply the same op to one tensor twice. Random operators are
    /// never merged (two draws differ), nor is a node whose output is a graph output. Counts the nodes dropped.
    public static let eliminateCommonSubexpressions = GraphPass(name: "eliminate-common-subexpressions") {
        graph, _ in
        guard !graph.hasSubgraphs else { return 0 }
        let outputs = Set(graph.outputs)
        var first: [String: Int] = [:]
        var removed: Set<Int> = []
        for index in graph.nodes.indices {
            let node = graph.nodes[index]
            guard let key = CommonSubexpression.key(node) else { continue }
            guard let earlier = first[key] else {
                first[key] = index
                continue
            }
            let kept = graph.nodes[earlier]
            let pairs = zip(node.outputs, kept.outputs)
            guard node.outputs.count == kept.outputs.count,
                pairs.allSatisfy({ $0.0 == nil || ($0.1 != nil && !outputs.contains($0.0!)) })
            else { continue }
            for case (let duplicate?, let original?) in pairs { graph.replaceUses(of: duplicate, with: original) }
            removed.insert(index)
        }
        graph.removeNodes(at: removed)
        return removed.count
    }
}

/// What makes two nodes compute the same values.
enum CommonSubexpression {
    /// Operators whose every application draws anew.
    static let random: Set<String> = [
        "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli",
    ]
    /// The largest tensor attribute (a `Constant`'s value) compared byte for byte.
    static let largestTensorBytes = 1 << 16

    /// The node's operator, attributes, inputs, guards and output count as one string, or nil when it must not
    /// be merged (random, or an attribute not compared: a subgraph, a large tensor, an unsupported kind).
    static func key(_ node: Node) -> String? {
        guard !(node.isDefaultDomain && random.contains(node.opType)) else { return nil }
        var parts = [node.domain, node.opType, String(node.outputs.count)]
        parts.append(node.inputs.map { $0.map { String($0.index) } ?? "-" }.joined(separator: ","))
        parts.append(node.guards.map { "\($0.condition.index)\($0.whenTrue ? "+" : "-")" }.joined(separator: ","))
        for (name, value) in node.attributes.sorted(by: { $0.key < $1.key }) {
            guard let text = attributeText(value) else { return nil }
            parts.append(name + "=" + text)
        }
        return parts.joined(separator: "|")
    }

    static func attributeText(_ value: AttributeValue) -> String? {
        switch value {
        case .float(let x): return "f\(x.bitPattern)"
        case .int(let x): return "i\(x)"
        case .string(let bytes): return "s\(bytes)"
        case .floats(let xs): return "F\(xs.map(\.bitPattern))"
        case .ints(let xs): return "I\(xs)"
        case .strings(let list): return "S\(list)"
        case .tensor(let constant):
            guard constant.storage.count <= largestTensorBytes else { return nil }
            return "t\(constant.dataType)\(constant.shape)\(Array(constant.storage.bytes))"
        case .tensors, .graph, .graphs, .unsupported: return nil
        }
    }
}

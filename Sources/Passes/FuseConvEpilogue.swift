import ModelIR

extension GraphPass {
    /// A Conv's consumers that only touch each of its outputs once, done while the Conv stores them:
    /// `Add(Conv(x), r)` with `r` shaped like the output (a residual connection), then `Relu`, a `Clip` with
    /// constant bounds or SiLU (`Mul(c, Sigmoid(c))`, operands in either order, c read by those two
    /// alone), become one `kiln::FusedConv(x, W, B, r)` with attributes `activation_min`/`activation_max` or
    /// `silu`, so the activations are written once instead of three times.
    /// Only a Conv output used by nothing else is fused; the fused node takes the consumer's place in
    /// the order (everything it reads is computed by then).
    public static let fuseConvEpilogue = GraphPass(name: "fuse-conv-epilogue") { graph, _ in
        var state = FusionState(graph)

        /// The Conv (or a fused one not yet clamped) producing `value` for its one consumer.
        func convolution(producing value: ValueID?, acceptsResidual: Bool) -> Int? {
            guard let value, let index = state.soleProducer(of: value) else { return nil }
            let node = graph.nodes[index]
            let isConv = node.opType == "Conv" && node.isDefaultDomain
            let isFused = node.opType == "FusedConv" && node.domain == "kiln"
            guard isConv || isFused, node.guards.isEmpty, node.outputs.count == 1,
                graph[value].type?.dataType == .float32, node.attributes["activation_min"] == nil,
                node.attributes["silu"] == nil
            else { return nil }
            if acceptsResidual && node.inputs.count > 3 { return nil }
            return index
        }

        func replace(
            _ convIndex: Int, by consumerIndex: Int, residual: ValueID?, clamp: (Float, Float)?, silu: Bool = false
        ) {
            var node = graph.nodes[convIndex]
            node.opType = "FusedConv"
            node.domain = "kiln"
            if let residual {
                while node.inputs.count < 3 { node.inputs.append(nil) }
                node.inputs.append(residual)
            }
            if let (lo, hi) = clamp {
                node.attributes["activation_min"] = .float(lo)
                node.attributes["activation_max"] = .float(hi)
            }
            if silu { node.attributes["silu"] = .int(1) }
            state.merge(node, from: convIndex, into: consumerIndex, in: &graph)
        }

        for index in graph.nodes.indices {
            let node = graph.nodes[index]
            guard node.isDefaultDomain, node.guards.isEmpty, node.outputs.count == 1 else {
                continue
            }
            switch node.opType {
            case "Add" where node.inputs.count == 2:
                guard let output = node.outputs[0], let shape = graph[output].type?.staticShape else { continue }
                for slot in 0..<2 {
                    guard let conv = convolution(producing: node.inputs[slot], acceptsResidual: true),
                        let other = node.inputs[1 - slot], other != node.inputs[slot],
                        graph[other].type?.dataType == .float32, graph[other].type?.staticShape == shape,
                        graph[node.inputs[slot]!].type?.staticShape == shape
                    else { continue }
                    replace(conv, by: index, residual: other, clamp: nil)
                    break
                }
            case "Relu":
                guard let conv = convolution(producing: node.inputs.first ?? nil, acceptsResidual: false) else {
                    continue
                }
                replace(conv, by: index, residual: nil, clamp: (0, .infinity))
            case "Clip":
                guard let bounds = graph.constantClipBounds(node),
                    let conv = convolution(producing: node.inputs.first ?? nil, acceptsResidual: false)
                else { continue }
                replace(conv, by: index, residual: nil, clamp: bounds)
            case "Mul":
                guard let (c, sigmoid) = state.silu(node, in: graph) else { continue }
                // The conv as the Mul's one reader, which it is once the Sigmoid goes.
                state.uses[c] = 1
                guard let conv = convolution(producing: c, acceptsResidual: false) else {
                    state.uses[c] = 2
                    continue
                }
                state.removed.insert(sigmoid)
                replace(conv, by: index, residual: nil, clamp: nil, silu: true)
            default:
                continue
            }
        }
        return state.finish(&graph)
    }
}

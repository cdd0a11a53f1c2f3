import ModelIR

extension GraphPass {
    /// A 1x1 `kiln::ConvNHWC` (stride 1, no padding, no residual) whose output only a
    /// `kiln::DepthwiseConvNHWC` reads becomes one `kiln::ExpandDepthwiseNHWC`: MobileNet's inverted residual
    /// blocks widen their input six times before the depthwise convolution, and that wide tensor (4.8 MB at
    /// 112 x 112 x 96) no longer goes through memory. The kernel makes it a band of rows at a time in L2, just
    /// before the depthwise rows that read it (conv_nhwc.c); only where that tensor is larger than L2 (6 of
    /// MobileNetV2's 16 blocks: those on 112 x 112, 56 x 56 and 28 x 28 maps). Then a 1x1 `kiln::ConvNHWC` (stride 1, no
    /// padding) that alone reads such a node's output, the block's projection back to few channels, is taken
    /// in as well, so the depthwise output stays in L2 too. Runs after `channels-last`; counts the nodes taken
    /// in (an expansion or a projection each). A wide tensor that fits in L2 is left to the separate kernels:
    /// it stays in L2 between them anyway, and they split their work over threads without the rows a fused
    /// band must make twice where two threads' runs of rows meet.
    public static let fuseExpandDepthwise = GraphPass(name: "fuse-expand-depthwise") { graph, context in
        var state = FusionState(graph)
        /// A 1x1 kiln::ConvNHWC of stride 1 without padding: output pixel m reads input pixel m. (Not with
        /// SiLU, which the fused kernel's stages do not apply.)
        func isPointwise(_ node: Node) -> Bool {
            node.qualifiedOpType == "kiln::ConvNHWC" && node.attributes["silu"] == nil && node.inputs.count >= 2
                && node.ints("kernel_shape") == [1, 1]
                && node.ints("strides") == [1, 1] && node.ints("dilations") == [1, 1]
                && node.ints("pads") == [0, 0, 0, 0]
        }
        /// Input `slot` of `node`, nil past its last.
        func input(_ node: Node, _ slot: Int) -> ValueID? { node.inputs.count > slot ? node.inputs[slot] : nil }
        for index in graph.nodes.indices {
            let depthwise = graph.nodes[index]
            guard depthwise.qualifiedOpType == "kiln::DepthwiseConvNHWC", depthwise.attributes["silu"] == nil,
                depthwise.inputs.count >= 2,
                let expandIndex = state.soleProducer(of: depthwise.inputs[0])
            else { continue }
            let expand = graph.nodes[expandIndex]
            guard isPointwise(expand), expand.inputs.count <= 3, depthwise.ints("kernel_shape")?.count == 2,
                let wide = depthwise.inputs[0],
                let shape = graph[wide].type?.staticShape, shape.reduce(4, *) > context.l2CacheBytes
            else { continue }
            var attributes = depthwise.attributes
            attributes["expand_min"] = expand.attributes["activation_min"]
            attributes["expand_max"] = expand.attributes["activation_max"]
            let inputs = [
                expand.inputs[0], expand.inputs[1], input(expand, 2), depthwise.inputs[1], input(depthwise, 2),
                input(depthwise, 3),
            ]
            let fused = Node(
                name: depthwise.name, opType: "ExpandDepthwiseNHWC", domain: "kiln", inputs: inputs,
                outputs: depthwise.outputs, attributes: attributes)
            state.merge(fused, from: expandIndex, into: index, in: &graph)
        }
        // The block's projection: a 1x1 kiln::ConvNHWC (stride 1, no padding) that alone reads the fused node's
        // output, with its bias, residual and activation.
        for index in graph.nodes.indices where !state.removed.contains(index) {
            let project = graph.nodes[index]
            guard isPointwise(project), let blockIndex = state.soleProducer(of: project.inputs[0]),
                graph.nodes[blockIndex].qualifiedOpType == "kiln::ExpandDepthwiseNHWC",
                graph.nodes[blockIndex].inputs.count == 6
            else { continue }
            var block = graph.nodes[blockIndex]
            block.inputs += [project.inputs[1], input(project, 2), input(project, 3)]
            block.attributes["project_min"] = project.attributes["activation_min"]
            block.attributes["project_max"] = project.attributes["activation_max"]
            state.merge(block, from: blockIndex, into: index, in: &graph)
        }
        return state.finish(&graph)
    }
}

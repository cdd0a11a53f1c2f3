import ModelIR

extension GraphPass {
    /// A 1x1 `kiln::ConvNHWC` (stride 1, no padding, no residual) whose output only a
    /// `kiln::DepthwiseConvNHWC` reads becomes one `kiln::ExpandDepthwiseNHWC`: MobileNet's inverted residual
    /// blocks widen their input six times before the depthwise convolution, and that wide tensor (4.8 MB at
    /// 112 x 112 x 96) no longer goes through memory. The kernel makes it a band of rows at a time in L2, just
    /// before the depthwise rows that read it (conv_nhwc.c). Runs after `channels-last`; counts the pairs.
    public static let fuseExpandDepthwise = GraphPass(name: "fuse-expand-depthwise") { graph in
        var state = FusionState(graph)
        for index in graph.nodes.indices {
            let depthwise = graph.nodes[index]
            guard depthwise.qualifiedOpType == "kiln::DepthwiseConvNHWC", depthwise.inputs.count >= 2,
                let expandIndex = state.soleProducer(of: depthwise.inputs[0])
            else { continue }
            let expand = graph.nodes[expandIndex]
            guard expand.qualifiedOpType == "kiln::ConvNHWC", expand.inputs.count >= 2, expand.inputs.count <= 3,
                expand.ints("kernel_shape") == [1, 1], expand.ints("strides") == [1, 1],
                expand.ints("dilations") == [1, 1], expand.ints("pads") == [0, 0, 0, 0],
                depthwise.ints("kernel_shape")?.count == 2
            else { continue }
            var attributes = depthwise.attributes
            attributes["expand_min"] = expand.attributes["activation_min"]
            attributes["expand_max"] = expand.attributes["activation_max"]
            let inputs: [ValueID?] =
                [expand.inputs[0], expand.inputs[1], expand.inputs.count > 2 ? expand.inputs[2] : nil]
                + [depthwise.inputs[1], depthwise.inputs.count > 2 ? depthwise.inputs[2] : nil]
                + (depthwise.inputs.count > 3 ? [depthwise.inputs[3]] : [])
            let fused = Node(
                name: depthwise.name, opType: "ExpandDepthwiseNHWC", domain: "kiln", inputs: inputs,
                outputs: depthwise.outputs, attributes: attributes)
            state.merge(fused, from: expandIndex, into: index, in: &graph)
        }
        return state.finish(&graph)
    }
}

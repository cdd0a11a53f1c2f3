import ModelIR

extension GraphPass {
    /// Layout selection: 2-D convolutions (group 1 and depthwise), max and average pooling and global
    /// average pooling run on channels-last (NHWC) activations, with the weights packed here, at compile
    /// time, into the order the CPU kernels read them (`kiln::ConvNHWC` panels of 32 output channels,
    /// `kiln::DepthwiseConvNHWC` channels innermost). Elementwise ops whose inputs are all NHWC, and
    /// Concat along the channels, stay NHWC; a `Transpose` back to NCHW is placed only before a node
    /// that needs the model's own layout (Flatten, Gemm, a graph output, ...). One forward sweep, so the
    /// order stays topological. Counts the nodes it rewrote.
    public static let channelsLast = GraphPass(name: "channels-last") { graph, context in
        var sweep = ChannelsLastSweep(graph: graph, context: context)
        guard sweep.applies else { return 0 }
        sweep.run()
        graph = sweep.graph
        return sweep.rewritten
    }
}

/// The state of one channels-last sweep: each NCHW value's NHWC twin, and the NCHW values not yet
/// written (their producer now writes the twin instead).
struct ChannelsLastSweep {
    static let toNHWC = [0, 2, 3, 1]
    static let toNCHW = [0, 3, 1, 2]
    /// The most kernel taps the NHWC kernels take (KK_NHWC_MAX_TAPS).
    static let maximumTaps = 256

    static let elementwise: Set<String> = [
        "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish", "Elu", "Selu", "Softplus",
        "Exp", "Neg", "Abs", "Sqrt", "Erf", "Identity", "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean",
    ]

    var graph: Graph
    private let context: PassContext
    private let source: [Node]
    private var twin: [ValueID: ValueID] = [:]
    private var pending: Set<ValueID> = []
    private(set) var rewritten = 0

    init(graph: Graph, context: PassContext) {
        self.graph = graph
        self.context = context
        source = graph.nodes
    }

    /// Subgraphs (Loop, Scan bodies) may read outer values by name: leave such graphs alone.
    var applies: Bool { !graph.hasSubgraphs }

    mutating func run() {
        graph.nodes = []
        for node in source {
            if node.guards.isEmpty, let rewrite = layoutNode(node) ?? passThrough(node) {
                graph.nodes.append(rewrite)
                continue
            }
            for id in node.reads { materialize(id) }
            graph.nodes.append(node)
        }
        for id in graph.outputs { materialize(id) }
    }

    // MARK: values in both layouts

    private func shape(_ id: ValueID?) -> [Int]? { id.flatMap { graph[$0].type?.staticShape } }

    private func isFloat4D(_ id: ValueID?) -> Bool {
        guard let id, let type = graph[id].type, type.dataType == .float32 else { return false }
        return type.staticShape?.count == 4
    }

    /// The NHWC twin of `id`, transposing it first if it has none.
    private mutating func nhwc(_ id: ValueID) -> ValueID {
        if let existing = twin[id] { return existing }
        let nchw = shape(id)!
        let result = graph.addValue(
            Value(name: graph[id].name + "/nhwc", type: TensorType(.float32, static: Self.toNHWC.map { nchw[$0] })))
        graph.nodes.append(
            Node(
                name: graph[id].name + "/to_nhwc", opType: "Transpose", inputs: [id], outputs: [result],
                attributes: ["perm": .ints(Self.toNHWC)]))
        twin[id] = result
        return result
    }

    /// A new NHWC value standing for the NCHW output `id`, which is written only if something needs it.
    private mutating func nhwcOutput(for id: ValueID, dataType: DataType = .float32) -> ValueID {
        let nchw = shape(id)!
        let result = graph.addValue(
            Value(name: graph[id].name + "/nhwc", type: TensorType(dataType, static: Self.toNHWC.map { nchw[$0] })))
        twin[id] = result
        pending.insert(id)
        return result
    }

    /// Writes `id` in NCHW from its twin, if only the twin exists so far.
    private mutating func materialize(_ id: ValueID) {
        guard pending.remove(id) != nil, let source = twin[id] else { return }
        graph.nodes.append(
            Node(
                name: graph[id].name + "/to_nchw", opType: "Transpose", inputs: [source], outputs: [id],
                attributes: ["perm": .ints(Self.toNCHW)]))
    }

    // MARK: rewrites

    /// A Conv, pooling or global pooling node as its NHWC kernel, or nil when that kernel cannot run it.
    private mutating func layoutNode(_ node: Node) -> Node? {
        guard node.outputs.count == 1, let x = node.inputs.first ?? nil, let y = node.outputs[0], isFloat4D(x),
            isFloat4D(y)
        else { return nil }
        switch node.qualifiedOpType {
        case "Conv", "kiln::FusedConv": return convolution(node, x: x, y: y)
        case "MaxPool", "AveragePool":
            return pooling(node, x: x, y: y)
        case "GlobalAveragePool":
            rewritten += 1
            var rewrite = node
            rewrite.domain = "kiln"
            rewrite.opType = "GlobalAveragePoolNHWC"
            rewrite.inputs = [nhwc(x)]
            rewrite.outputs = [nhwcOutput(for: y)]
            return rewrite
        default: return nil
        }
    }

    private mutating func convolution(_ node: Node, x: ValueID, y: ValueID) -> Node? {
        guard let weightID = node.inputs.count > 1 ? node.inputs[1] : nil,
            let weight = graph.initializers[weightID], weight.dataType == .float32, weight.shape.count == 4,
            weight.storage.count >= weight.elementCount * 4, let xs = shape(x), let ys = shape(y)
        else { return nil }
        let (outChannels, perGroup, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        let group = node.int("group") ?? 1
        let depthwise = group > 1 && group == xs[1] && outChannels == xs[1] && perGroup == 1
        guard group == 1 || depthwise, group > 1 || perGroup == xs[1], ys[1] == outChannels,
            node.ints("kernel_shape").map({ $0 == [kh, kw] }) ?? true, kh * kw <= Self.maximumTaps, kh > 0, kw > 0
        else { return nil }
        let bias = node.inputs.count > 2 ? node.inputs[2] : nil
        if let bias, shape(bias) != [outChannels] || graph[bias].type?.dataType != .float32 { return nil }
        let residual = node.inputs.count > 3 ? node.inputs[3] : nil
        if let residual, shape(residual) != ys { return nil }
        let window = ConvolutionWindow(node, kernel: [kh, kw], input: Array(xs[2...]), output: Array(ys[2...]))

        let opType: String
        let packed: Constant
        if depthwise {
            (opType, packed) = (
                "DepthwiseConvNHWC", WeightPacking.depthwise(weight, channels: outChannels, taps: kh * kw)
            )
        } else if Self.winograd(
            kernel: [kh, kw], window: window, inChannels: perGroup, outChannels: outChannels, output: ys,
            l2CacheBytes: context.l2CacheBytes)
        {
            (opType, packed) = (
                "WinogradConvNHWC", WeightPacking.winograd(weight, outChannels: outChannels, inChannels: perGroup)
            )
        } else {
            (opType, packed) = (
                "ConvNHWC",
                WeightPacking.convolutionPanels(weight, outChannels: outChannels, inChannels: perGroup, taps: kh * kw)
            )
        }
        let packedID = graph.addValue(
            Value(name: graph[weightID].name + "/packed", type: TensorType(.float32, static: packed.shape)))
        graph.initializers[packedID] = packed

        rewritten += 1
        var inputs: [ValueID?] = [nhwc(x), packedID, bias]
        if let residual { inputs.append(nhwc(residual)) }
        var attributes: [String: AttributeValue] = [
            "kernel_shape": .ints(window.kernel), "strides": .ints(window.strides),
            "dilations": .ints(window.dilations), "pads": .ints(window.padBegin + window.padEnd),
        ]
        for name in ["activation_min", "activation_max", "silu"] { attributes[name] = node.attributes[name] }
        return Node(
            name: node.name, opType: opType, domain: "kiln", inputs: inputs,
            outputs: [nhwcOutput(for: y)], attributes: attributes)
    }

    private mutating func pooling(_ node: Node, x: ValueID, y: ValueID) -> Node? {
        guard let kernel = node.ints("kernel_shape"), kernel.count == 2, kernel.allSatisfy({ $0 > 0 }),
            kernel[0] * kernel[1] <= Self.maximumTaps, let xs = shape(x), let ys = shape(y)
        else { return nil }
        let window = ConvolutionWindow(node, kernel: kernel, input: Array(xs[2...]), output: Array(ys[2...]))
        // The NCHW kernel refuses this combination too; leave it to say so.
        if node.opType == "AveragePool", node.int("count_include_pad") == 1, node.int("ceil_mode") == 1,
            window.dilations.contains(where: { $0 > 1 })
        {
            return nil
        }
        rewritten += 1
        return Node(
            name: node.name, opType: node.opType + "NHWC", domain: "kiln", inputs: [nhwc(x)],
            outputs: [nhwcOutput(for: y)],
            attributes: [
                "kernel_shape": .ints(window.kernel), "strides": .ints(window.strides),
                "dilations": .ints(window.dilations), "pads": .ints(window.padBegin + window.padEnd),
                "count_include_pad": .int(node.int("count_include_pad") ?? 0),
            ])
    }

    /// An elementwise op or a channel Concat whose tensor inputs all have NHWC twins, run on the twins.
    private mutating func passThrough(_ node: Node) -> Node? {
        guard node.isDefaultDomain, node.outputs.count == 1, let y = node.outputs[0], let ys = shape(y), ys.count == 4,
            let outputType = graph[y].type
        else { return nil }
        let tensors = node.inputs.compactMap { $0 }.filter { graph.initializers[$0] == nil }
        guard !tensors.isEmpty, tensors.allSatisfy({ twin[$0] != nil }) else { return nil }
        var rewrite = node
        if node.opType == "Concat" {
            guard let axis = node.int("axis"), axis == 1 || axis == -3, tensors.count == node.inputs.count else {
                return nil
            }
            rewrite.attributes["axis"] = .int(3)
        } else {
            guard Self.elementwise.contains(node.opType), tensors.allSatisfy({ shape($0) == ys }),
                node.inputs.compactMap({ $0 }).allSatisfy({
                    graph.initializers[$0].map { $0.elementCount == 1 } ?? true
                })
            else { return nil }
        }
        rewrite.inputs = node.inputs.map { id in id.map { graph.initializers[$0] == nil ? twin[$0]! : $0 } }
        rewrite.outputs = [nhwcOutput(for: y, dataType: outputType.dataType)]
        return rewrite
    }

    /// Whether a 3x3 convolution runs as Winograd F(2x2, 3x3) (`kiln::WinogradConvNHWC`, 2.25 times fewer
    /// multiply-adds): stride and dilation 1, enough channels for the transforms to pay (measured: 16 input
    /// channels to 64 output on a 55 x 55 map already run at 1.7 times the direct kernel's speed), and
    /// transformed weights (16 · in · out floats) of at most four times the L2 cache. Larger ones stream
    /// from L3 or memory once per block of 12 tiles, and the direct kernel wins. Measured on both sides of
    /// the bound: on the 2-core Zen 3 (512 KiB L2, AVX2), 256 → 256 channels at 14 x 14 (4 MiB) took
    /// 3.3–3.6 ms by Winograd against 2.6–3.0 direct, while 128 → 128 at 28 x 28 (1 MiB) took 2.0–2.2
    /// against 2.8; on the 2-core Zen 5 (1 MiB L2, AVX-512), ResNet-50 ran in 33.3 ms with its 4 MiB layers
    /// on Winograd against 34.5 without, and with the 9 MiB ones (512 → 512 at 7 x 7) too in 33.2 at one
    /// thread but 19.2 against 18.8 at two, ResNet-18 12.7 against 12.0 (medians of five alternating rounds).
    static func winograd(
        kernel: [Int], window: ConvolutionWindow, inChannels: Int, outChannels: Int, output: [Int], l2CacheBytes: Int
    ) -> Bool {
        kernel == [3, 3] && window.strides == [1, 1] && window.dilations == [1, 1] && inChannels >= 8
            && outChannels >= 16 && output[2] >= 2 && output[3] >= 2
            && 16 * inChannels * outChannels * 4 <= 4 * l2CacheBytes
    }
}

import Diagnostics
import ModelIR

/// The NHWC kernels that Passes/ChannelsLast.swift rewrites convolution and pooling into. Their windows
/// arrive explicit (kernel_shape, strides, dilations, pads as [top, left, bottom, right]) and their
/// convolution weights already packed in the kernels' order.
enum ChannelsLastLowerings {
    /// The explicit window attributes the pass writes.
    static func window(_ c: LoweringContext, _ node: Node, _ index: Int) throws -> ConvolutionWindow {
        guard let kernel = node.ints("kernel_shape"), let strides = node.ints("strides"),
            let dilations = node.ints("dilations"), let pads = node.ints("pads"), kernel.count == 2,
            strides.count == 2, dilations.count == 2, pads.count == 4
        else {
            throw c.notImplemented(
                node, index, "an NHWC node without the window attributes the channels-last pass writes")
        }
        return ConvolutionWindow(
            kernel: kernel, strides: strides, dilations: dilations, padBegin: Array(pads[0..<2]),
            padEnd: Array(pads[2...]))
    }

    /// kiln::ConvNHWC, kiln::WinogradConvNHWC and kiln::DepthwiseConvNHWC: x [N, H, W, C], packed weights,
    /// bias, residual.
    static func lowerConv(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let w = node.inputs[1], let y = node.outputs[0] else { return }
        let window = try window(c, node, index)
        let (xs, ys) = (c.shape(x), c.shape(y))
        let kernel = ["ConvNHWC": "conv_nhwc_f32", "WinogradConvNHWC": "conv_winograd_nhwc_f32"][node.opType]
        switch node.opType {
        case "ConvNHWC": c.scratchFloats = max(c.scratchFloats, window.kernel[1] * xs[3])
        case "WinogradConvNHWC":
            // V and M for every tile, in blocks of 12 (conv_winograd_nhwc_f32), then a row of zeros.
            let tiles = ys[0] * ((ys[1] + 1) / 2) * ((ys[2] + 1) / 2)
            let panels = (ys[3] + 31) / 32
            c.scratchFloats = max(c.scratchFloats, 16 * ((tiles + 11) / 12 * 12) * (xs[3] + 32 * panels) + xs[3])
        default: break
        }
        let bias = node.inputs.count > 2 ? node.inputs[2].map { c.pointer($0) } : nil
        c.emit("  { kk_conv_nhwc_params p = {0};")
        emitParams(
            &c, "p", input: xs, output: ys, window: window, residual: node.inputs.count > 3 ? node.inputs[3] : nil,
            clamp: clamp(node, "activation_min", "activation_max"))
        if node.int("silu") == 1 { c.emit("    p.special = KK_SPECIAL_SILU;") }
        if let kernel {
            c.emit("    KK(\(kernel))(&p, \(c.pointer(x)), \(c.pointer(w)), \(bias ?? "0"), \(c.pointer(y)), S); }")
        } else {
            c.emit(
                "    KK(depthwise_nhwc_f32)(&p, \(c.pointer(x)), \(c.pointer(w)), \(bias ?? "0"), \(c.pointer(y))); }")
        }
    }

    /// The bounds in attributes `lo` and `hi`, when the node has both.
    static func clamp(_ node: Node, _ lo: String, _ hi: String) -> (Float, Float)? {
        node.float(lo).flatMap { lo in node.float(hi).map { (lo, $0) } }
    }

    /// The fields of the kk_conv_nhwc_params `name` for a convolution from `input` to `output` (NHWC shapes).
    static func emitParams(
        _ c: inout LoweringContext, _ name: String, input xs: [Int], output ys: [Int], window: ConvolutionWindow,
        residual: ValueID?, clamp: (Float, Float)?
    ) {
        let p = name
        c.emit(
            "    \(p).batch = \(xs[0]); \(p).in_h = \(xs[1]); \(p).in_w = \(xs[2]); \(p).in_c = \(xs[3]); \(p).out_h = \(ys[1]); \(p).out_w = \(ys[2]); \(p).out_c = \(ys[3]);"
        )
        c.emit(
            "    \(p).kernel_h = \(window.kernel[0]); \(p).kernel_w = \(window.kernel[1]); \(p).stride_h = \(window.strides[0]); \(p).stride_w = \(window.strides[1]);"
        )
        c.emit(
            "    \(p).dilation_h = \(window.dilations[0]); \(p).dilation_w = \(window.dilations[1]); \(p).pad_top = \(window.padBegin[0]); \(p).pad_left = \(window.padBegin[1]);"
        )
        if let residual { c.emit("    \(p).residual = \(c.pointer(residual));") }
        if let (lo, hi) = clamp {
            c.emit("    \(p).clamp = 1; \(p).lo = \(CSource.float(lo)); \(p).hi = \(CSource.float(hi));")
        }
    }

    /// Scratch slots of kiln::ExpandDepthwiseNHWC: runs of output rows that threads take in turn.
    static let expandDepthwiseChunks = 4
    /// Bytes of the wide tensor a band of output rows may read: with the band's inputs and outputs, L2's share.
    static let expandDepthwiseBandBytes = 192 << 10

    /// kiln::ExpandDepthwiseNHWC (Passes/FuseExpandDepthwise.swift): x [N, H, W, C], then the 1x1
    /// convolution's packed weights and bias, the depthwise convolution's weights, bias and residual, and when
    /// the block's projection is taken in too, its packed weights, bias and residual (absent ones nil); the
    /// 1x1's activation in expand_min/expand_max, the projection's in project_min/project_max. The band is the
    /// most output rows whose rows of the wide tensor fit in expandDepthwiseBandBytes (at least one).
    static func lowerExpandDepthwise(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        func input(_ slot: Int) -> ValueID? { node.inputs.count > slot ? node.inputs[slot] : nil }
        guard let x = input(0), let we = input(1), let wd = input(3), let y = node.outputs[0] else { return }
        let window = try window(c, node, index)
        let (xs, ys) = (c.shape(x), c.shape(y))
        let projection = input(6)
        // The wide tensor; the depthwise output (mid channels, the projection's input when there is one).
        let channels = c.shape(wd).last ?? 0
        let wide = [xs[0], xs[1], xs[2], channels]
        let depthwiseOut = [ys[0], ys[1], ys[2], channels]
        let reach = (window.kernel[0] - 1) * window.dilations[0] + 1
        let rowFloats = xs[2] * channels
        func bandRows(_ band: Int) -> Int { min(xs[1], (band - 1) * window.strides[0] + reach) }
        var band = 1
        while band < ys[1], bandRows(band + 1) * rowFloats * 4 <= expandDepthwiseBandBytes { band += 1 }
        let slot = bandRows(band) * rowFloats
        let mid = projection == nil ? 0 : band * ys[2] * channels
        c.scratchFloats = max(c.scratchFloats, expandDepthwiseChunks * (slot + mid))
        let pointwise = ConvolutionWindow(
            kernel: [1, 1], strides: [1, 1], dilations: [1, 1], padBegin: [0, 0], padEnd: [0, 0])
        c.emit("  { kk_conv_nhwc_params e = {0}, d = {0}, j = {0};")
        emitParams(
            &c, "e", input: xs, output: wide, window: pointwise, residual: nil,
            clamp: clamp(node, "expand_min", "expand_max"))
        emitParams(
            &c, "d", input: wide, output: depthwiseOut, window: window, residual: input(5),
            clamp: clamp(node, "activation_min", "activation_max"))
        if projection != nil {
            emitParams(
                &c, "j", input: depthwiseOut, output: ys, window: pointwise, residual: input(8),
                clamp: clamp(node, "project_min", "project_max"))
        }
        func pointer(_ id: ValueID?) -> String { id.map { c.pointer($0) } ?? "0" }
        let arguments = [
            "&e", pointer(we), pointer(input(2)), "&d", pointer(wd), pointer(input(4)),
            projection == nil ? "0" : "&j", pointer(projection), pointer(input(7)), pointer(x), pointer(y), "S",
            "\(band)", "\(expandDepthwiseChunks)", "\(slot)", "\(mid)",
        ]
        c.emit("    KK(expand_depthwise_nhwc_f32)(\(arguments.joined(separator: ", "))); }")
    }

    /// kiln::MaxPoolNHWC and kiln::AveragePoolNHWC over [N, H, W, C].
    static func lowerPool(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let window = try window(c, node, index)
        let (xs, ys) = (c.shape(x), c.shape(y))
        c.emit(
            "  { kk_pool_params p = {0}; p.batch = \(xs[0]); p.channels = \(xs[3]); p.kind = \(node.opType == "MaxPoolNHWC" ? 0 : 1); p.count_include_pad = \(node.int("count_include_pad") ?? 0);"
        )
        NeuralNetworkLowerings.windowFields(
            &c, "p", input: Array(xs[1...2]), output: Array(ys[1...2]), kernel: window.kernel,
            strides: window.strides, dilations: window.dilations, padBegin: window.padBegin, padEnd: window.padEnd)
        c.emit("    KK(pool_nhwc_f32)(&p, \(c.pointer(x)), \(c.pointer(y))); }")
    }

    /// kiln::GlobalAveragePoolNHWC: [N, H, W, C] → [N, 1, 1, C].
    static func lowerGlobalAveragePool(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs[0], let y = node.outputs[0] else { return }
        let xs = c.shape(x)
        c.emit(
            "  KK(global_average_pool_nhwc_f32)(\(c.pointer(x)), \(xs[0]), \(xs[1] * xs[2]), \(xs[3]), \(c.pointer(y)));"
        )
    }
}

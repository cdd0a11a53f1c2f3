/// The window a Conv or pooling node slides over its input's spatial dims, with auto_pad resolved
/// into explicit pads: what the backend's kernels and the layout pass both need, computed one way.
public struct ConvolutionWindow: Sendable, Equatable {
    public var kernel: [Int]
    public var strides: [Int]
    public var dilations: [Int]
    public var padBegin: [Int]
    public var padEnd: [Int]

    public init(kernel: [Int], strides: [Int], dilations: [Int], padBegin: [Int], padEnd: [Int]) {
        self.kernel = kernel
        self.strides = strides
        self.dilations = dilations
        self.padBegin = padBegin
        self.padEnd = padEnd
    }

    /// `node`'s window over `input` (spatial dims) giving `output`: kernel_shape (default: the weight's
    /// spatial dims), strides and dilations (default 1), pads as ONNX defines them after auto_pad.
    public init(_ node: Node, kernel: [Int], input: [Int], output: [Int]) {
        let spatial = kernel.count
        self.kernel = kernel
        strides = node.ints("strides") ?? Array(repeating: 1, count: spatial)
        dilations = node.ints("dilations") ?? Array(repeating: 1, count: spatial)
        (padBegin, padEnd) = Self.pads(
            node, input: input, output: output, kernel: kernel, strides: strides, dilations: dilations)
    }

    /// Pads per spatial axis (begin, end) after auto_pad, as ONNX defines them.
    public static func pads(
        _ node: Node, input: [Int], output: [Int], kernel: [Int], strides: [Int], dilations: [Int]
    ) -> (begin: [Int], end: [Int]) {
        let spatial = kernel.count
        let autoPad = node.string("auto_pad") ?? "NOTSET"
        if autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER" {
            var begin: [Int] = []
            var end: [Int] = []
            for axis in 0..<spatial {
                let effective = dilations[axis] * (kernel[axis] - 1) + 1
                let total = max(0, (output[axis] - 1) * strides[axis] + effective - input[axis])
                let small = total / 2
                begin.append(autoPad == "SAME_UPPER" ? small : total - small)
                end.append(total - begin[axis])
            }
            return (begin, end)
        }
        if autoPad == "VALID" { return (Array(repeating: 0, count: spatial), Array(repeating: 0, count: spatial)) }
        let pads = node.ints("pads") ?? Array(repeating: 0, count: spatial * 2)
        return (Array(pads[0..<spatial]), Array(pads[spatial...]))
    }
}

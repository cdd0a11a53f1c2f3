import ModelIR

/// How the CPU backend compiles one ai.onnx operator.
struct OperatorLowering: Sendable {
    typealias Lower = @Sendable (inout LoweringContext, Node, Int) throws -> Void

    /// Element types the op is compiled for (of its first input, or its output when it has none).
    var types: Set<DataType>
    var lower: Lower
}

/// Every operator the CPU backend compiles, one line each: the answer to
/// "which ops does Kiln support?" (shape rules are in ModelIR's ShapeRules).
/// Keys are ai.onnx op types, or `domain::Op` for other domains.
public enum OperatorTable {
    static let float32: Set<DataType> = [.float32]
    static let anyType: Set<DataType> = Set(DataType.allCases.filter { CSource.type($0) != nil })

    static let table: [String: OperatorLowering] = {
        typealias E = ElementwiseLowerings
        typealias N = NeuralNetworkLowerings
        typealias D = DataMovementLowerings
        var table: [String: OperatorLowering] = [:]
        for (op, entry) in E.unary { table[op] = OperatorLowering(types: entry.0, lower: E.lowerUnary) }
        for (op, entry) in E.binary { table[op] = OperatorLowering(types: entry.0, lower: E.lowerBinary) }
        for op in ["Sum", "Mean"] { table[op] = OperatorLowering(types: E.numeric, lower: E.lowerVariadic) }
        // Comparisons are exact in float16 too.
        for op in ["Max", "Min"] {
            table[op] = OperatorLowering(types: E.numeric.union([.float16]), lower: E.lowerVariadic)
        }
        table["Where"] = OperatorLowering(types: [.bool], lower: E.lowerWhere)
        table["Cast"] = OperatorLowering(types: anyType, lower: E.lowerCast)
        table["Clip"] = OperatorLowering(types: E.numeric, lower: E.lowerClip)

        table["Conv"] = OperatorLowering(types: float32, lower: N.lowerConv)
        table["kiln::FusedConv"] = OperatorLowering(types: float32, lower: N.lowerConv)
        table["ConvTranspose"] = OperatorLowering(types: float32, lower: N.lowerConvTranspose)
        // Passes/ChannelsLast.swift: the NHWC kernels (weights packed at compile time).
        for op in ["kiln::ConvNHWC", "kiln::WinogradConvNHWC", "kiln::DepthwiseConvNHWC"] {
            table[op] = OperatorLowering(types: float32, lower: ChannelsLastLowerings.lowerConv)
        }
        table["kiln::ExpandDepthwiseNHWC"] = OperatorLowering(
            types: float32, lower: ChannelsLastLowerings.lowerExpandDepthwise)
        for op in ["kiln::MaxPoolNHWC", "kiln::AveragePoolNHWC"] {
            table[op] = OperatorLowering(types: float32, lower: ChannelsLastLowerings.lowerPool)
        }
        table["kiln::GlobalAveragePoolNHWC"] = OperatorLowering(
            types: float32, lower: ChannelsLastLowerings.lowerGlobalAveragePool)
        for op in ["MaxPool", "AveragePool", "LpPool"] {
            table[op] = OperatorLowering(types: float32, lower: N.lowerPool)
        }
        for op in ["GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"] {
            table[op] = OperatorLowering(types: float32, lower: N.lowerGlobalPool)
        }
        table["Gemm"] = OperatorLowering(types: E.floats, lower: N.lowerGemm)
        table["MatMul"] = OperatorLowering(types: E.floats, lower: N.lowerMatMul)
        // Passes/FuseMatMulEpilogue.swift and Passes/FuseGelu.swift.
        table["kiln::FusedMatMul"] = OperatorLowering(types: float32, lower: N.lowerFusedMatMul)
        table["kiln::Attention"] = OperatorLowering(types: float32, lower: N.lowerAttention)
        table["kiln::Gelu"] = OperatorLowering(types: float32, lower: E.lowerUnary)
        table["kiln::FusedElementwise"] = OperatorLowering(types: float32, lower: E.lowerFused)
        table["BatchNormalization"] = OperatorLowering(types: float32, lower: N.lowerBatchNorm)
        table["LayerNormalization"] = OperatorLowering(types: float32, lower: N.lowerLayerNorm)
        table["InstanceNormalization"] = OperatorLowering(types: float32, lower: N.lowerInstanceNorm)
        for op in ["Softmax", "LogSoftmax", "Hardmax"] {
            table[op] = OperatorLowering(types: E.floats, lower: N.lowerSoftmax)
        }

        for op in ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"] {
            table[op] = OperatorLowering(types: anyType, lower: D.lowerCopy)
        }
        table["Transpose"] = OperatorLowering(types: anyType, lower: D.lowerTranspose)
        table["Concat"] = OperatorLowering(types: anyType, lower: D.lowerConcat)
        table["Split"] = OperatorLowering(types: anyType, lower: D.lowerSplit)
        table["Slice"] = OperatorLowering(types: anyType, lower: D.lowerSlice)
        table["Expand"] = OperatorLowering(types: anyType, lower: D.lowerExpand)
        table["Tile"] = OperatorLowering(types: anyType, lower: D.lowerTile)
        table["Gather"] = OperatorLowering(types: anyType, lower: D.lowerGather)
        table["Pad"] = OperatorLowering(types: anyType, lower: D.lowerPad)
        table["Compress"] = OperatorLowering(types: anyType, lower: D.lowerCompress)
        table["ConstantOfShape"] = OperatorLowering(types: anyType, lower: D.lowerConstantOfShape)
        table["Range"] = OperatorLowering(types: E.numeric, lower: D.lowerRange)
        for op in [
            "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
            "ReduceLogSumExp", "ReduceSumSquare",
        ] {
            table[op] = OperatorLowering(types: [.float32, .float64, .int64, .int32], lower: D.lowerReduce)
        }
        table["ArgMax"] = OperatorLowering(types: float32, lower: D.lowerArgReduce)
        table["ArgMin"] = OperatorLowering(types: float32, lower: D.lowerArgReduce)
        typealias I = IndexingLowerings
        table["GatherElements"] = OperatorLowering(types: anyType, lower: I.lowerGatherElements)
        table["ScatterElements"] = OperatorLowering(types: anyType, lower: I.lowerScatterElements)
        table["ScatterND"] = OperatorLowering(types: anyType, lower: I.lowerScatterND)
        table["Trilu"] = OperatorLowering(types: anyType, lower: I.lowerTrilu)
        table["CumSum"] = OperatorLowering(types: E.numeric, lower: I.lowerCumSum)
        table["EyeLike"] = OperatorLowering(types: anyType, lower: I.lowerEyeLike)
        table["CastLike"] = OperatorLowering(types: anyType, lower: I.lowerCastLike)
        table["Resize"] = OperatorLowering(types: float32, lower: ResizeLowering.lower)
        table["NegativeLogLikelihoodLoss"] = OperatorLowering(types: E.floats, lower: LossLowerings.lowerNLL)
        table["SoftmaxCrossEntropyLoss"] = OperatorLowering(types: float32, lower: LossLowerings.lowerSCE)
        typealias R = RearrangingLowerings
        table["TopK"] = OperatorLowering(types: E.numeric, lower: R.lowerTopK)
        table["GatherND"] = OperatorLowering(types: anyType, lower: R.lowerGatherND)
        table["DepthToSpace"] = OperatorLowering(types: anyType, lower: R.lowerDepthSpace)
        table["SpaceToDepth"] = OperatorLowering(types: anyType, lower: R.lowerDepthSpace)
        table["ReverseSequence"] = OperatorLowering(types: anyType, lower: R.lowerReverseSequence)
        table["OneHot"] = OperatorLowering(types: E.numeric, lower: R.lowerOneHot)
        table["CenterCropPad"] = OperatorLowering(types: anyType, lower: R.lowerCenterCropPad)
        table["MaxUnpool"] = OperatorLowering(types: E.floats, lower: R.lowerMaxUnpool)
        typealias Norm = NormalizationLowerings
        table["LRN"] = OperatorLowering(types: E.floats, lower: Norm.lowerLRN)
        table["MeanVarianceNormalization"] = OperatorLowering(
            types: E.floats, lower: Norm.lowerMeanVarianceNormalization)
        table["GroupNormalization"] = OperatorLowering(types: E.floats, lower: Norm.lowerGroupNormalization)
        typealias L = LinearAlgebraLowerings
        table["Einsum"] = OperatorLowering(types: E.numeric, lower: L.lowerEinsum)
        table["Det"] = OperatorLowering(types: E.floats, lower: L.lowerDet)
        for op in ["HannWindow", "HammingWindow", "BlackmanWindow"] {
            table[op] = OperatorLowering(types: [.int32, .int64], lower: L.lowerWindow)
        }
        typealias Q = QuantizationLowerings
        let quantized: Set<DataType> = [.int8, .uint8]
        table["QuantizeLinear"] = OperatorLowering(types: [.float32, .int32], lower: Q.lowerQuantizeLinear)
        table["DequantizeLinear"] = OperatorLowering(
            types: [.int8, .uint8, .int16, .uint16, .int32], lower: Q.lowerDequantizeLinear)
        table["DynamicQuantizeLinear"] = OperatorLowering(types: float32, lower: Q.lowerDynamicQuantizeLinear)
        for op in ["MatMulInteger", "QLinearMatMul"] {
            table[op] = OperatorLowering(types: quantized, lower: Q.lowerIntegerMatMul)
        }
        for op in ["ConvInteger", "QLinearConv"] {
            table[op] = OperatorLowering(types: quantized, lower: Q.lowerIntegerConv)
        }
        for op in ["com.microsoft::QLinearAdd", "com.microsoft::QLinearMul"] {
            table[op] = OperatorLowering(types: quantized, lower: Q.lowerQLinearBinary)
        }
        table["com.microsoft::QLinearGlobalAveragePool"] = OperatorLowering(
            types: quantized, lower: Q.lowerQLinearGlobalAveragePool)
        for op in ["LSTM", "GRU", "RNN"] {
            table[op] = OperatorLowering(types: float32, lower: RecurrentLowerings.lower)
        }
        // An inlined If's output: the taken branch's value (Frontends' ControlFlowExpansion makes these).
        table["kiln::Select"] = OperatorLowering(types: [.bool]) { c, node, _ in
            guard node.inputs.count == 3, let condition = node.inputs[0], let a = node.inputs[1],
                let b = node.inputs[2],
                let y = node.outputs[0]
            else { return }
            let bytes = c.count(y) * (c.dataType(y).byteSize ?? 1)
            let (pc, pa, pb, py) = (c.pointer(condition), c.pointer(a), c.pointer(b), c.pointer(y))
            if bytes > 0 { c.emit("  memmove(\(py), \(pc)[0] ? (const void *)\(pa) : (const void *)\(pb), \(bytes));") }
        }
        typealias ML = MachineLearningLowerings
        let features: Set<DataType> = [.float32, .float64, .int64, .int32]
        for op in ["TreeEnsembleClassifier", "TreeEnsembleRegressor"] {
            table["ai.onnx.ml::" + op] = OperatorLowering(types: features, lower: ML.lowerTreeEnsemble)
        }
        table["ai.onnx.ml::LinearClassifier"] = OperatorLowering(types: features, lower: ML.lowerLinearClassifier)
        table["ai.onnx.ml::LinearRegressor"] = OperatorLowering(types: features, lower: ML.lowerLinearRegressor)
        table["ai.onnx.ml::Normalizer"] = OperatorLowering(types: features, lower: ML.lowerNormalizer)
        table["ai.onnx.ml::Scaler"] = OperatorLowering(types: features, lower: ML.lowerScaler)
        table["ai.onnx.ml::Binarizer"] = OperatorLowering(types: E.numeric, lower: ML.lowerBinarizer)
        table["ai.onnx.ml::ArrayFeatureExtractor"] = OperatorLowering(
            types: anyType, lower: ML.lowerArrayFeatureExtractor)
        table["ai.onnx.ml::LabelEncoder"] = OperatorLowering(
            types: [.int64, .int32, .int16, .int8, .uint8], lower: ML.lowerLabelEncoder)
        return table
    }()

    /// Ops folded away before lowering (their outputs become constants).
    static let foldedOps: Set<String> = ["Constant", "Shape", "Size"]

    /// Ops the check stage turns into other ops, and how (for `kiln ops`).
    public static let rewrittenOps: [String: String] = [
        "If": "both branches inlined, the taken one run; a constant condition keeps one",
        "Loop": "unrolled; the trip count must be known at compile time",
        "Scan": "unrolled over the scanned axis (opset 9 and later)",
        "NonZero": "computed at compile time; its input must be known then",
        "Unique": "computed at compile time over the flattened input; its input must be known then",
    ]

    /// The supported ops, for the README and `kiln ops` (Kiln's internal `kiln::` ops left out).
    public static var supportedOps: [String] {
        (table.keys.filter { !$0.hasPrefix("kiln::") } + Array(foldedOps) + Array(rewrittenOps.keys)).sorted()
    }

    /// The element types an op is compiled for (nil for folded and rewritten ops: any).
    public static func types(of op: String) -> [String]? {
        table[op].map { $0.types.map(\.name).sorted() }
    }
}

import ModelIR

extension GraphPass {
    /// `BatchNormalization(Conv(x, W, b))` with constant weights and statistics becomes one `Conv`
    /// with W' = W·s and b' = (b − mean)·s + β per output channel, s = γ / √(var + ε): the
    /// normalization's whole pass over the activations disappears. Only inference-mode BN (one
    /// output) whose input is produced by a Conv and used by nothing else is folded.
    public static let foldBatchNormalization = GraphPass(name: "fold-batch-normalization") { graph, _ in
        let (producer, uses) = graph.producersAndUses()
        var removed: Set<Int> = []
        for (index, node) in graph.nodes.enumerated()
        where node.opType == "BatchNormalization" && node.domain.isEmpty && node.outputs.count == 1
            && (node.int("training_mode") ?? 0) == 0
        {
            guard node.inputs.count == 5, let x = node.inputs[0], let output = node.outputs[0],
                let convIndex = producer[x], uses[x] == 1, !removed.contains(convIndex)
            else { continue }
            let conv = graph.nodes[convIndex]
            guard conv.opType == "Conv", conv.domain.isEmpty, conv.inputs.count >= 2, let weightID = conv.inputs[1],
                let weight = graph.initializers[weightID], weight.dataType == .float32,
                let channels = weight.shape.first
            else { continue }
            let parameters = node.inputs[1...].map { id in id.flatMap { graph.initializers[$0] } }
            let floats = parameters.map { constant -> [Double]? in
                guard let constant, constant.dataType == .float32, constant.shape == [channels] else { return nil }
                return constant.doubles()
            }
            let count = weight.elementCount
            guard floats.allSatisfy({ $0 != nil }), channels > 0, count % channels == 0,
                weight.storage.count >= count * 4
            else {
                continue
            }
            let (gamma, beta, mean, variance) = (floats[0]!, floats[1]!, floats[2]!, floats[3]!)
            var bias = [Double](repeating: 0, count: channels)
            if conv.inputs.count > 2, let biasID = conv.inputs[2] {
                guard let constant = graph.initializers[biasID], constant.dataType == .float32,
                    constant.shape == [channels], let values = constant.doubles()
                else { continue }
                bias = values
            }
            let epsilon = Double(node.float("epsilon") ?? 1e-5)
            let scale = (0..<channels).map { gamma[$0] / (variance[$0] + epsilon).squareRoot() }
            let foldedBias = (0..<channels).map { Float((bias[$0] - mean[$0]) * scale[$0] + beta[$0]) }
            // Weights are large (25 M for ResNet-50): scale them through raw buffers, one channel at a time.
            let perChannel = count / channels
            let source = weight.storage.bytes
            let foldedWeights = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                for channel in 0..<channels {
                    let factor = Float(scale[channel])
                    let start = channel * perChannel
                    for index in start..<start + perChannel {
                        buffer[index] = source.loadUnaligned(fromByteOffset: index * 4, as: Float.self) * factor
                    }
                }
                initialized = count
            }
            let weightValue = graph.addValue(
                Value(name: conv.name + "/folded_weight", type: TensorType(.float32, static: weight.shape)))
            graph.initializers[weightValue] = Constant(float32: foldedWeights, shape: weight.shape)
            let biasValue = graph.addValue(
                Value(name: conv.name + "/folded_bias", type: TensorType(.float32, static: [channels])))
            graph.initializers[biasValue] = Constant(float32: foldedBias, shape: [channels])
            var folded = conv
            folded.inputs = [conv.inputs[0], weightValue, biasValue]
            folded.outputs = [output]
            graph.nodes[convIndex] = folded
            removed.insert(index)
        }
        graph.removeNodes(at: removed)
        return removed.count
    }
}

import ModelIR

extension GraphPass {
    /// A MatMul by a constant 2-D weight `W [K, N]` and what its one reader does to each output, done as
    /// the product stores its tiles: `Add` of a constant bias of N values (broadcast over the rows), then
    /// `Add` of a tensor shaped like the output (a residual connection), then `Relu`, `Clip` with constant
    /// bounds, `kiln::Gelu` (see fuse-gelu) or SiLU (`Mul(c, Sigmoid(c))`), in that order, each optional. The MatMul becomes one
    /// `kiln::FusedMatMul(x, W, bias, residual)` (attributes `gelu`, `silu`, `activation_min`/`activation_max`)
    /// in its last consumer's place, W packed like a 1x1 convolution's weights: since W is shared by every
    /// leading index of x, the product is a 1x1 convolution of all of x's rows as pixels, run by the NHWC
    /// implicit GEMM with nothing packed at run time. Counts each consumer taken in.
    public static let fuseMatMulEpilogue = GraphPass(name: "fuse-matmul-epilogue") { graph, _ in
        var state = FusionState(graph)

        /// The MatMul, or fused one with `stage` still open, producing `value` for its one reader.
        /// Stages: 0 bias, 1 residual, 2 activation; a fused node may take only a later stage than it has.
        func product(producing value: ValueID?, stage: Int) -> Int? {
            guard let value, let index = state.soleProducer(of: value) else { return nil }
            let node = graph.nodes[index]
            guard node.guards.isEmpty, node.outputs.count == 1, graph[value].type?.dataType == .float32 else {
                return nil
            }
            if node.qualifiedOpType == "MatMul" {
                guard node.inputs.count == 2, let w = node.inputs[1], let weight = graph.initializers[w],
                    weight.dataType == .float32, weight.shape.count == 2,
                    let x = node.inputs[0], let xs = graph[x].type?.staticShape, xs.last == weight.shape[0]
                else { return nil }
                return index
            }
            guard node.qualifiedOpType == "kiln::FusedMatMul" else { return nil }
            let has = [
                node.inputs.count > 2 && node.inputs[2] != nil, node.inputs.count > 3,
                node.int("gelu") == 1 || node.int("silu") == 1 || node.attributes["activation_min"] != nil,
            ]
            return has[stage...].contains(true) ? nil : index
        }

        /// Turns the product at `productIndex` into a FusedMatMul that also does `consumerIndex`'s work; a
        /// MatMul's weight is packed then, once, into the NHWC kernel's panels (WeightPacking.matrixPanels).
        func take(_ productIndex: Int, into consumerIndex: Int, _ change: (inout Node) -> Void) {
            var node = graph.nodes[productIndex]
            if node.domain != "kiln", let w = node.inputs[1], let weight = graph.initializers[w] {
                node.opType = "FusedMatMul"
                node.domain = "kiln"
                let packed = WeightPacking.matrixPanels(weight, rows: weight.shape[0], columns: weight.shape[1])
                let packedID = graph.addValue(
                    Value(name: graph[w].name + "/packed", type: TensorType(.float32, static: packed.shape)))
                graph.initializers[packedID] = packed
                node.inputs[1] = packedID
            }
            change(&node)
            state.merge(node, from: productIndex, into: consumerIndex, in: &graph)
        }

        for index in graph.nodes.indices {
            let node = graph.nodes[index]
            guard node.guards.isEmpty, node.outputs.count == 1, let output = node.outputs[0],
                let shape = graph[output].type?.staticShape
            else { continue }
            switch node.qualifiedOpType {
            case "Add":
                guard node.inputs.count == 2 else { continue }
                for slot in 0..<2 {
                    guard let other = node.inputs[1 - slot], other != node.inputs[slot],
                        let otherType = graph[other].type, otherType.dataType == .float32,
                        let otherShape = otherType.staticShape
                    else { continue }
                    let width = shape.last ?? 0
                    if let constant = graph.initializers[other], constant.elementCount == width,
                        otherShape.last == width, otherShape.dropLast().allSatisfy({ $0 == 1 }),
                        otherShape.count <= shape.count,
                        elementCount(graph[node.inputs[slot]!].type?.staticShape ?? []) == elementCount(shape),
                        let matmul = product(producing: node.inputs[slot], stage: 0)
                    {
                        take(matmul, into: index) { fusedNode in
                            fusedNode.inputs = [fusedNode.inputs[0], fusedNode.inputs[1], other]
                        }
                        break
                    }
                    if otherShape == shape, graph[node.inputs[slot]!].type?.staticShape == shape,
                        let matmul = product(producing: node.inputs[slot], stage: 1)
                    {
                        take(matmul, into: index) { fusedNode in
                            while fusedNode.inputs.count < 3 { fusedNode.inputs.append(nil) }
                            fusedNode.inputs.append(other)
                        }
                        break
                    }
                }
            case "Relu":
                guard let matmul = product(producing: node.inputs.first ?? nil, stage: 2) else { continue }
                take(matmul, into: index) { fusedNode in
                    fusedNode.attributes["activation_min"] = .float(0)
                    fusedNode.attributes["activation_max"] = .float(.infinity)
                }
            case "kiln::Gelu":
                guard let matmul = product(producing: node.inputs.first ?? nil, stage: 2) else { continue }
                take(matmul, into: index) { fusedNode in fusedNode.attributes["gelu"] = .int(1) }
            case "Mul":
                guard let (c, sigmoid) = state.silu(node, in: graph) else { continue }
                // The product as the Mul's one reader, which it is once the Sigmoid goes.
                state.uses[c] = 1
                guard let matmul = product(producing: c, stage: 2) else {
                    state.uses[c] = 2
                    continue
                }
                state.removed.insert(sigmoid)
                take(matmul, into: index) { fusedNode in fusedNode.attributes["silu"] = .int(1) }
            case "Clip":
                guard let (lo, hi) = graph.constantClipBounds(node),
                    let matmul = product(producing: node.inputs.first ?? nil, stage: 2)
                else { continue }
                take(matmul, into: index) { fusedNode in
                    fusedNode.attributes["activation_min"] = .float(lo)
                    fusedNode.attributes["activation_max"] = .float(hi)
                }
            default:
                continue
            }
        }
        return state.finish(&graph)
    }
}

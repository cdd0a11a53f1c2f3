/// Shape rules of the classic-ML operators (ai.onnx.ml): a [N, F] (or [F]) input gives N rows.
extension ShapeRules {
    static func addMachineLearningRules(_ table: inout [String: ShapeRule]) {
        let ml = "ai.onnx.ml::"
        table[ml + "TreeEnsembleClassifier"] = { c in
            [
                InferredOutput(.int64, [rowCount(c)]),
                InferredOutput(.float32, [rowCount(c), max(classLabels(c.node), 1)]),
            ]
        }
        table[ml + "TreeEnsembleRegressor"] = { c in
            [InferredOutput(.float32, [rowCount(c), c.node.int("n_targets") ?? 1])]
        }
        table[ml + "LinearClassifier"] = { c in
            let classes = floatCount(c.node, "intercepts")
            let width = classes == 1 && classLabels(c.node) == 2 ? 2 : classes
            return [InferredOutput(.int64, [rowCount(c)]), InferredOutput(.float32, [rowCount(c), width])]
        }
        table[ml + "LinearRegressor"] = { c in [InferredOutput(.float32, [rowCount(c), c.node.int("targets") ?? 1])] }
        table[ml + "Normalizer"] = { c in [InferredOutput(.float32, c.shape(0))] }
        table[ml + "Scaler"] = { c in [InferredOutput(.float32, c.shape(0))] }
        table[ml + "Binarizer"] = { c in [InferredOutput(c.dataType(0), c.shape(0))] }
        table[ml + "ArrayFeatureExtractor"] = { c in
            let x = c.shape(0)
            let count = elementCount(c.shape(1)) ?? 0
            return [InferredOutput(c.dataType(0), x.count <= 1 ? [1, count] : Array(x.dropLast()) + [count])]
        }
        table[ml + "LabelEncoder"] = { c in
            let node = c.node
            var type = DataType.string
            if node.ints("values_int64s") != nil {
                type = .int64
            } else if case .floats? = node.attributes["values_floats"] {
                type = .float32
            } else if let tensor = node.tensor("values_tensor") {
                type = tensor.dataType
            }
            return [InferredOutput(type, c.shape(0))]
        }
    }

    /// Rows of a classic-ML input: [F] is one row.
    static func rowCount(_ c: ShapeContext) -> Int {
        let x = c.shape(0)
        return x.count <= 1 ? 1 : x[0]
    }

    static func classLabels(_ node: Node) -> Int {
        if let ints = node.ints("classlabels_int64s") ?? node.ints("classlabels_ints") { return ints.count }
        if case .strings(let labels)? = node.attributes["classlabels_strings"] { return labels.count }
        return 0
    }

    static func floatCount(_ node: Node, _ name: String) -> Int {
        if case .floats(let values)? = node.attributes[name] { return values.count }
        return 0
    }
}

import Diagnostics
import ModelIR

/// Classic ML operators (ai.onnx.ml): tree ensembles compiled to flattened
/// node arrays walked by a small loop (as treelite does), linear models as
/// dot products, and the preprocessing ops. Scores follow ONNX Runtime's
/// conventions, including its binary-classification special cases.
enum MachineLearningLowerings {
    // MARK: attributes

    static func floats(_ node: Node, _ name: String) -> [Double]? {
        switch node.attributes[name] {
        case .floats(let values)?: return values.map(Double.init)
        case .float(let value)?: return [Double(value)]
        default: return node.tensor(name + "_as_tensor")?.doubles() ?? node.tensor(name)?.doubles()
        }
    }

    static func ints(_ node: Node, _ name: String) -> [Int] { node.ints(name) ?? [] }

    static func requireNoStrings(_ c: LoweringContext, _ node: Node, _ index: Int, _ names: [String]) throws {
        for name in names {
            if case .strings(let values)? = node.attributes[name], !values.isEmpty {
                throw c.notImplemented(
                    node, index,
                    "string class labels ('\(name)'); Kiln compiles tensors of numbers, so export integer labels")
            }
        }
    }

    /// Rows and features of a classic-ML input: [N, F], or [F] as one row.
    static func rows(_ c: LoweringContext, _ x: ValueID) -> (Int, Int) {
        let shape = c.shape(x)
        switch shape.count {
        case 0: return (1, 1)
        case 1: return (1, shape[0])
        default: return (shape[0], shape[1...].reduce(1, *))
        }
    }

    /// Emits a `static const` C array.
    static func table(_ c: inout LoweringContext, _ type: String, _ name: String, _ values: [String]) {
        c.emit("  static const \(type) \(name)[] = {\(values.isEmpty ? "0" : values.joined(separator: ", "))};")
    }

    static func floatLiterals(_ values: [Double]) -> [String] { values.map { CSource.float(Float($0)) } }

    enum PostTransform: String {
        case none = "NONE", softmax = "SOFTMAX", logistic = "LOGISTIC", softmaxZero = "SOFTMAX_ZERO", probit = "PROBIT"
    }

    static func postTransform(_ c: LoweringContext, _ node: Node, _ index: Int) throws -> PostTransform {
        let name = node.string("post_transform") ?? "NONE"
        guard let transform = PostTransform(rawValue: name) else {
            throw c.notImplemented(node, index, "post_transform '\(name)'")
        }
        return transform
    }

    /// C statements applying a post transform to `count` floats at `s` (two or more scores), as ONNX Runtime's
    /// write_scores does; one score takes only PROBIT.
    static func emitPostTransform(_ c: inout LoweringContext, _ transform: PostTransform, scores s: String, count: Int)
    {
        switch transform {
        case .none: break
        case .logistic:
            c.emit("      for (size_t j = 0; j < \(count); j++) \(s)[j] = kiln_ml_logistic(\(s)[j]);")
        case .probit:
            c.emit("      for (size_t j = 0; j < \(count); j++) \(s)[j] = kiln_ml_probit(\(s)[j]);")
        case .softmax, .softmaxZero:
            guard count >= 2 else { return }
            let zero = transform == .softmaxZero
            c.emit("      { float mx = -3.402823466e+38f, sum = 0.0f;")
            c.emit("        for (size_t j = 0; j < \(count); j++) mx = \(s)[j] > mx ? \(s)[j] : mx;")
            if zero {
                c.emit("        float scale0 = exp(-mx);")
                c.emit(
                    "        for (size_t j = 0; j < \(count); j++) { if (\(s)[j] > 0.0000001f || \(s)[j] < -0.0000001f) { \(s)[j] = exp(\(s)[j] - mx); sum += \(s)[j]; } else \(s)[j] *= scale0; }"
                )
            } else {
                c.emit("        for (size_t j = 0; j < \(count); j++) { \(s)[j] = exp(\(s)[j] - mx); sum += \(s)[j]; }")
            }
            c.emit("        for (size_t j = 0; j < \(count); j++) \(s)[j] /= sum; }")
        }
    }

    /// The helpers post transforms call, declared once per generated file by the first ML op.
    static func emitHelpers(_ c: inout LoweringContext) {
        c.emitOnce(
            "kiln_ml_helpers",
            [
                "static inline float kiln_ml_logistic(float v) { float e = 1.0f / (1.0f + exp(-fabs(v))); return v < 0 ? 1.0f - e : e; }",
                // Winitzki's approximation (a = 0.147), the one ONNX Runtime's PROBIT uses.
                "static inline float kiln_ml_erfinv(float x) {",
                "  float sign = x < 0 ? -1.0f : 1.0f; x = (1.0f - x) * (1.0f + x);",
                "  float l = log(x), v = 2.0f / (3.14159f * 0.147f) + 0.5f * l, v2 = 1.0f / 0.147f * l;",
                "  return sign * sqrt(-v + sqrt(v * v - v2)); }",
                "static inline float kiln_ml_probit(float v) { return 1.41421356f * kiln_ml_erfinv(2.0f * v - 1.0f); }",
            ])
    }

    // MARK: tree ensembles

    /// TreeEnsembleClassifier and TreeEnsembleRegressor (opsets 1 and 3, float or tensor attributes).
    static func lowerTreeEnsemble(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        let classifier = node.opType == "TreeEnsembleClassifier"
        try requireNoStrings(c, node, index, ["classlabels_strings"])
        guard let x = node.inputs.first ?? nil else { return }
        let transform = try postTransform(c, node, index)
        let treeIDs = ints(node, "nodes_treeids")
        let nodeIDs = ints(node, "nodes_nodeids")
        let features = ints(node, "nodes_featureids")
        let thresholds = floats(node, "nodes_values") ?? []
        let modes: [String] = {
            if case .strings(let values)? = node.attributes["nodes_modes"] {
                return values.map { String(decoding: $0, as: UTF8.self) }
            }
            return []
        }()
        let trueIDs = ints(node, "nodes_truenodeids")
        let falseIDs = ints(node, "nodes_falsenodeids")
        let missingTrue = ints(node, "nodes_missing_value_tracks_true")
        let count = nodeIDs.count
        guard count > 0,
            [treeIDs.count, features.count, modes.count, trueIDs.count, falseIDs.count].allSatisfy({ $0 == count }),
            thresholds.count == count || thresholds.isEmpty
        else {
            throw c.notImplemented(node, index, "the nodes_* attributes have different lengths")
        }
        let prefix = classifier ? "class" : "target"
        let weightTrees = ints(node, "\(prefix)_treeids")
        let weightNodes = ints(node, "\(prefix)_nodeids")
        let weightIDs = ints(node, "\(prefix)_ids")
        let weightValues = floats(node, "\(prefix)_weights") ?? []
        guard [weightNodes.count, weightIDs.count, weightValues.count].allSatisfy({ $0 == weightTrees.count }) else {
            throw c.notImplemented(node, index, "the \(prefix)_* attributes have different lengths")
        }
        let labels = ints(node, "classlabels_int64s")
        let outputs = classifier ? max(labels.count, 1) : (node.int("n_targets") ?? 1)
        let baseValues = floats(node, "base_values") ?? []

        // Flatten: one global index per (tree, node); children and leaf weights by that index.
        var position: [[Int]: Int] = [:]
        for i in 0..<count { position[[treeIDs[i], nodeIDs[i]]] = i }
        let modeCodes = [
            "BRANCH_LEQ": 0, "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3, "BRANCH_EQ": 4, "BRANCH_NEQ": 5,
            "LEAF": 6,
        ]
        var codes: [Int] = []
        var trueIndex: [Int] = []
        var falseIndex: [Int] = []
        for i in 0..<count {
            guard let code = modeCodes[modes[i]] else {
                throw c.notImplemented(node, index, "tree node mode '\(modes[i])'")
            }
            codes.append(code)
            if code == 6 {
                trueIndex.append(0)
                falseIndex.append(0)
                continue
            }
            guard let t = position[[treeIDs[i], trueIDs[i]]], let f = position[[treeIDs[i], falseIDs[i]]] else {
                throw c.notImplemented(
                    node, index, "tree \(treeIDs[i]) node \(nodeIDs[i]) names a child that does not exist")
            }
            guard features[i] >= 0, features[i] < rows(c, x).1 else {
                throw c.notImplemented(node, index, "tree node reads feature \(features[i]) of \(rows(c, x).1)")
            }
            trueIndex.append(t)
            falseIndex.append(f)
        }
        var leafWeights: [Int: [(Int, Double)]] = [:]
        for w in 0..<weightTrees.count {
            guard let at = position[[weightTrees[w], weightNodes[w]]], weightIDs[w] >= 0, weightIDs[w] < outputs else {
                throw c.notImplemented(node, index, "a leaf weight names a node or \(prefix) that does not exist")
            }
            leafWeights[at, default: []].append((weightIDs[w], weightValues[w]))
        }
        // Roots: each tree's first node in attribute order, trees in order of first appearance.
        var roots: [Int] = []
        var seenTrees: Set<Int> = []
        for i in 0..<count where seenTrees.insert(treeIDs[i]).inserted { roots.append(i) }
        var leafStart: [Int] = []
        var leafTarget: [Int] = []
        var leafValue: [Double] = []
        for i in 0..<count {
            leafStart.append(leafTarget.count)
            for (target, value) in leafWeights[i] ?? [] {
                leafTarget.append(target)
                leafValue.append(value)
            }
        }
        leafStart.append(leafTarget.count)

        emitHelpers(&c)
        let t = "te\(index)_"
        table(&c, "int32_t", t + "feature", features.map(String.init))
        table(
            &c, "float", t + "threshold",
            floatLiterals(thresholds.isEmpty ? Array(repeating: 0, count: count) : thresholds))
        table(&c, "uint8_t", t + "mode", codes.map(String.init))
        table(
            &c, "uint8_t", t + "missing", (0..<count).map { $0 < missingTrue.count && missingTrue[$0] != 0 ? "1" : "0" }
        )
        table(&c, "int32_t", t + "yes", trueIndex.map(String.init))
        table(&c, "int32_t", t + "no", falseIndex.map(String.init))
        table(&c, "int32_t", t + "root", roots.map(String.init))
        table(&c, "int32_t", t + "leaf", leafStart.map(String.init))
        table(&c, "int32_t", t + "target", leafTarget.map(String.init))
        table(&c, "float", t + "weight", floatLiterals(leafValue))

        let (n, f) = rows(c, x)
        let px = c.pointer(x)
        c.emit("  for (size_t r = 0; r < \(n); r++) {")
        c.emit("    float score[\(max(outputs, 2))] = {0}; uint8_t has[\(max(outputs, 2))] = {0};")
        c.emit("    const \(c.ctype(x)) *row = \(px) + r * \(f);")
        c.emit("    for (size_t tree = 0; tree < \(roots.count); tree++) {")
        c.emit("      int32_t at = \(t)root[tree];")
        c.emit("      while (\(t)mode[at] != 6) {")
        c.emit("        float v = (float)row[\(t)feature[at]], th = \(t)threshold[at]; int go;")
        c.emit("        switch (\(t)mode[at]) { case 0: go = v <= th; break; case 1: go = v < th; break;")
        c.emit("          case 2: go = v >= th; break; case 3: go = v > th; break; case 4: go = v == th; break;")
        c.emit("          default: go = v != th; break; }")
        c.emit("        if (v != v && \(t)missing[at]) go = 1;")
        c.emit("        at = go ? \(t)yes[at] : \(t)no[at]; }")
        let aggregate = classifier ? "SUM" : (node.string("aggregate_function") ?? "SUM")
        let combine: String
        switch aggregate {
        case "SUM", "AVERAGE": combine = "score[k] += w;"
        case "MIN": combine = "score[k] = (!has[k] || w < score[k]) ? w : score[k];"
        case "MAX": combine = "score[k] = (!has[k] || w > score[k]) ? w : score[k];"
        default: throw c.notImplemented(node, index, "aggregate_function '\(aggregate)'")
        }
        c.emit(
            "      for (int32_t l = \(t)leaf[at]; l < \(t)leaf[at + 1]; l++) { int32_t k = \(t)target[l]; float w = \(t)weight[l]; \(combine) has[k] = 1; }"
        )
        c.emit("    }")
        if classifier {
            guard let label = node.outputs[0], node.outputs.count > 1, let scores = node.outputs[1] else { return }
            try emitClassifierFinish(
                &c, node, index, labels: labels, base: baseValues, transform: transform,
                weightIDs: weightIDs, weightValues: weightValues, label: c.pointer(label), scores: c.pointer(scores),
                classes: outputs)
        } else {
            guard let y = node.outputs[0] else { return }
            let py = c.pointer(y)
            if outputs == 1 {
                let origin = baseValues.count == 1 ? CSource.float(Float(baseValues[0])) : "0.0f"
                switch aggregate {
                case "AVERAGE": c.emit("    score[0] = score[0] / \(roots.count) + \(origin);")
                case "SUM": c.emit("    score[0] += \(origin);")
                default: c.emit("    score[0] = has[0] ? score[0] + \(origin) : \(origin);")
                }
                if transform == .probit { c.emit("    score[0] = kiln_ml_probit(score[0]);") }
            } else {
                let useBase = baseValues.count == outputs
                table(&c, "float", t + "base", floatLiterals(useBase ? baseValues : [0]))
                c.emit("    for (size_t k = 0; k < \(outputs); k++) {")
                switch aggregate {
                case "AVERAGE": c.emit("      score[k] = score[k] / \(roots.count)\(useBase ? " + \(t)base[k]" : "");")
                case "SUM": if useBase { c.emit("      score[k] += \(t)base[k];") }
                default: c.emit("      score[k] = (\(useBase ? "\(t)base[k]" : "0.0f")) + (has[k] ? score[k] : 0.0f);")
                }
                c.emit("    }")
                emitPostTransform(&c, transform, scores: "score", count: outputs)
            }
            c.emit("    for (size_t k = 0; k < \(outputs); k++) \(py)[r * \(outputs) + k] = score[k];")
        }
        c.emit("  }")
    }

    /// The classifier's label and scores from the per-class sums, ONNX Runtime's way: argmax over classes
    /// that scored (plus base values) for three or more classes; its binary rules for two.
    static func emitClassifierFinish(
        _ c: inout LoweringContext, _ node: Node, _ index: Int, labels: [Int], base: [Double],
        transform: PostTransform, weightIDs: [Int], weightValues: [Double], label: String, scores: String,
        classes: Int
    ) throws {
        let t = "te\(index)_"
        table(&c, "int64_t", t + "labels", labels.isEmpty ? ["0"] : labels.map { "INT64_C(\($0))" })
        if classes > 2 {
            table(&c, "float", t + "base", floatLiterals(base.isEmpty ? [0] : base))
            if !base.isEmpty {
                c.emit(
                    "    for (size_t k = 0; k < \(min(base.count, classes)); k++) { score[k] += \(t)base[k]; has[k] = 1; }"
                )
            }
            c.emit(
                "    { int best = -1; for (int k = 0; k < \(classes); k++) if (has[k] && (best < 0 || score[k] > score[best])) best = k;"
            )
            c.emit("      \(label)[r] = \(t)labels[best < 0 ? 0 : best]; }")
            emitPostTransform(&c, transform, scores: "score", count: classes)
            c.emit("    for (size_t k = 0; k < \(classes); k++) \(scores)[r * \(classes) + k] = score[k];")
            return
        }
        guard classes == 2 else {
            throw c.notImplemented(node, index, "a tree classifier with \(classes) class label(s)")
        }
        // Binary: weights on a single class id make the "binary case".
        let binaryCase = Set(weightIDs).count == 1
        let allPositive = weightValues.allSatisfy { $0 >= 0 }
        func f(_ v: Double) -> String { CSource.float(Float(v)) }
        // extra: -1 none, 0..3 how one score becomes two (ONNX Runtime's add_second_class).
        c.emit("    int single = 0, extra = -1;")
        switch base.count {
        case 2:
            c.emit(
                "    if (has[1]) { score[1] = \(f(base[1])) + score[0]; score[0] = -score[1]; } else { score[1] += \(f(base[1])); score[0] += \(f(base[0])); }"
            )
        case 1:
            c.emit("    score[0] += \(f(base[0])); if (!has[1]) single = 1;")
        default:
            c.emit("    extra = 3; if (!has[1]) single = 1;")
        }
        c.emit("    float pos = (!single && has[1]) ? score[1] : (has[0] ? score[0] : 0.0f);")
        if binaryCase {
            if allPositive {
                c.emit(
                    "    if (pos > 0.5f) { extra = 0; \(label)[r] = \(t)labels[1]; } else { extra = 1; \(label)[r] = \(t)labels[0]; }"
                )
            } else {
                c.emit(
                    "    if (pos > 0.0f) { extra = 2; \(label)[r] = \(t)labels[1]; } else { extra = 3; \(label)[r] = \(t)labels[0]; }"
                )
            }
        } else {
            c.emit("    \(label)[r] = pos > 0.0f ? 1 : 0;")
        }
        c.emit("    if (!single) {")
        emitPostTransform(&c, transform, scores: "score", count: 2)
        c.emit("    } else {")
        if transform == .probit {
            c.emit("      score[0] = kiln_ml_probit(score[0]); score[1] = 0.0f;")
        } else {
            c.emit("      float s = score[0];")
            c.emit("      if (extra == 0 || extra == 1) { score[0] = 1.0f - s; score[1] = s; }")
            if transform == .logistic {
                c.emit(
                    "      else if (extra >= 2) { score[0] = kiln_ml_logistic(-s); score[1] = kiln_ml_logistic(s); }")
            } else {
                c.emit("      else if (extra >= 2) { score[0] = -s; score[1] = s; }")
            }
            c.emit("      else score[1] = 0.0f;")
        }
        c.emit("    }")
        c.emit("    \(scores)[r * 2] = score[0]; \(scores)[r * 2 + 1] = score[1];")
    }

    // MARK: linear models

    static func lowerLinearClassifier(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        try requireNoStrings(c, node, index, ["classlabels_strings"])
        guard let x = node.inputs.first ?? nil, let label = node.outputs[0], node.outputs.count > 1,
            let scoresOut = node.outputs[1]
        else { return }
        let transform = try postTransform(c, node, index)
        let f = rows(c, x).1
        let coefficients = floats(node, "coefficients") ?? []
        let intercepts = floats(node, "intercepts") ?? []
        let classes = intercepts.count
        guard classes > 0, coefficients.count == classes * f else {
            throw c.notImplemented(
                node, index, "\(coefficients.count) coefficients and \(classes) intercepts for \(f) features")
        }
        let labels =
            ints(node, "classlabels_int64s").isEmpty ? ints(node, "classlabels_ints") : ints(node, "classlabels_int64s")
        let secondClass = classes == 1 && labels.count == 2
        let width = secondClass ? 2 : classes
        emitHelpers(&c)
        let t = "lc\(index)_"
        table(&c, "int64_t", t + "labels", labels.isEmpty ? ["0"] : labels.map { "INT64_C(\($0))" })
        let (pl, ps) = (c.pointer(label), c.pointer(scoresOut))
        emitLinearScores(&c, t, x: x, coefficients: coefficients, intercepts: intercepts, outputs: classes)
        if classes == 1 {
            let (positive, negative) = labels.count == 2 ? ("\(t)labels[1]", "\(t)labels[0]") : ("1", "0")
            c.emit("    \(pl)[r] = score[0] > 0 ? \(positive) : \(negative);")
        } else {
            c.emit(
                "    { size_t best = 0; for (size_t k = 1; k < \(classes); k++) if (score[k] > score[best]) best = k;")
            c.emit("      \(pl)[r] = \(labels.isEmpty ? "(int64_t)best" : "\(t)labels[best]"); }")
        }
        if secondClass {
            // One score, two classes: the scores become [1 - p, p] after the transform (p the positive score).
            switch transform {
            case .logistic: c.emit("    score[0] = kiln_ml_logistic(score[0]);")
            case .probit: c.emit("    score[0] = kiln_ml_probit(score[0]);")
            default: break
            }
            c.emit("    score[1] = score[0]; score[0] = 1.0f - score[1];")
        } else {
            emitPostTransform(&c, transform, scores: "score", count: classes)
        }
        c.emit("    for (size_t k = 0; k < \(width); k++) \(ps)[r * \(width) + k] = score[k];")
        c.emit("  }")
    }

    /// Tables of a linear model and, per row r of x, `score[k] = x[r] · w[k] + b[k]` (the row loop left open).
    static func emitLinearScores(
        _ c: inout LoweringContext, _ t: String, x: ValueID, coefficients: [Double], intercepts: [Double], outputs: Int
    ) {
        let (n, f) = rows(c, x)
        table(&c, "float", t + "w", floatLiterals(coefficients))
        table(&c, "float", t + "b", floatLiterals(intercepts))
        let px = c.pointer(x)
        c.emit("  for (size_t r = 0; r < \(n); r++) {")
        c.emit("    float score[\(max(outputs, 2))];")
        c.emit("    for (size_t k = 0; k < \(outputs); k++) { float acc = 0.0f;")
        c.emit("      for (size_t j = 0; j < \(f); j++) acc += (float)\(px)[r * \(f) + j] * \(t)w[k * \(f) + j];")
        c.emit("      score[k] = acc + \(t)b[k]; }")
    }

    static func lowerLinearRegressor(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs.first ?? nil, let y = node.outputs[0] else { return }
        let transform = try postTransform(c, node, index)
        let f = rows(c, x).1
        let targets = node.int("targets") ?? 1
        let coefficients = floats(node, "coefficients") ?? []
        let intercepts = floats(node, "intercepts") ?? []
        guard coefficients.count == targets * f, intercepts.isEmpty || intercepts.count == targets else {
            throw c.notImplemented(
                node, index, "\(coefficients.count) coefficients for \(targets) target(s) of \(f) features")
        }
        emitHelpers(&c)
        let py = c.pointer(y)
        emitLinearScores(
            &c, "lr\(index)_", x: x, coefficients: coefficients,
            intercepts: intercepts.isEmpty ? Array(repeating: 0, count: targets) : intercepts, outputs: targets)
        if targets == 1 {
            if transform == .probit { c.emit("    score[0] = kiln_ml_probit(score[0]);") }
        } else {
            emitPostTransform(&c, transform, scores: "score", count: targets)
        }
        c.emit("    for (size_t k = 0; k < \(targets); k++) \(py)[r * \(targets) + k] = score[k];")
        c.emit("  }")
    }

    // MARK: preprocessing

    static func lowerNormalizer(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs.first ?? nil, let y = node.outputs[0] else { return }
        let (n, f) = rows(c, x)
        let norm = node.string("norm") ?? "MAX"
        let (px, py) = (c.pointer(x), c.pointer(y))
        c.emit("  for (size_t r = 0; r < \(n); r++) {")
        c.emit("    const \(c.ctype(x)) *in = \(px) + r * \(f); float *out = \(py) + r * \(f);")
        switch norm {
        case "MAX":
            c.emit(
                "    float m = (float)in[0]; for (size_t j = 1; j < \(f); j++) m = (float)in[j] > m ? (float)in[j] : m;"
            )
            c.emit("    for (size_t j = 0; j < \(f); j++) out[j] = m != 0 ? (float)in[j] / m : (float)in[j];")
        case "L1":
            c.emit("    float s = 0.0f; for (size_t j = 0; j < \(f); j++) s += fabs((float)in[j]);")
            c.emit("    for (size_t j = 0; j < \(f); j++) out[j] = s != 0 ? (float)in[j] / s : (float)in[j];")
        case "L2":
            c.emit("    float s = 0.0f; for (size_t j = 0; j < \(f); j++) s += (float)in[j] * (float)in[j];")
            c.emit("    float d = sqrt(s);")
            c.emit("    for (size_t j = 0; j < \(f); j++) out[j] = s != 0 ? (float)in[j] / d : (float)in[j];")
        default:
            throw c.notImplemented(node, index, "norm '\(norm)' (MAX, L1 and L2 exist)")
        }
        c.emit("  }")
    }

    static func lowerScaler(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs.first ?? nil, let y = node.outputs[0] else { return }
        let (_, f) = rows(c, x)
        let offsets = floats(node, "offset") ?? [0]
        let scales = floats(node, "scale") ?? [1]
        for (name, values) in [("offset", offsets), ("scale", scales)] where values.count != 1 && values.count != f {
            throw c.notImplemented(node, index, "\(name) has \(values.count) values for \(f) features")
        }
        let t = "sc\(index)_"
        table(&c, "float", t + "offset", floatLiterals(offsets))
        table(&c, "float", t + "scale", floatLiterals(scales))
        let (px, py) = (c.pointer(x), c.pointer(y))
        let o = offsets.count == 1 ? "\(t)offset[0]" : "\(t)offset[i % \(f)]"
        let s = scales.count == 1 ? "\(t)scale[0]" : "\(t)scale[i % \(f)]"
        c.emit("  for (size_t i = 0; i < \(c.count(y)); i++) \(py)[i] = ((float)\(px)[i] - \(o)) * \(s);")
    }

    static func lowerBinarizer(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs.first ?? nil, let y = node.outputs[0] else { return }
        let threshold = CSource.literal(Double(node.float("threshold") ?? 0), as: c.dataType(x))
        let one = CSource.literal(1, as: c.dataType(x))
        let zero = CSource.literal(0, as: c.dataType(x))
        c.emitElementwise(output: y, operands: [x]) { "(\($0[0]) > \(threshold) ? \(one) : \(zero))" }
    }

    /// Picks elements along the last axis by index (a rank-1 input gives one row).
    static func lowerArrayFeatureExtractor(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard node.inputs.count == 2, let x = node.inputs[0], let indices = node.inputs[1], let y = node.outputs[0]
        else { return }
        let xs = c.shape(x)
        let last = xs.last ?? 1
        let outer = xs.count <= 1 ? 1 : xs.dropLast().reduce(1, *)
        let k = c.count(indices)
        let (px, pi, py) = (c.pointer(x), c.pointer(indices), c.pointer(y))
        c.emit("  for (size_t j = 0; j < \(k); j++) if (\(pi)[j] < 0 || \(pi)[j] >= \(last)) return 2;")
        c.emit(
            "  for (size_t o = 0; o < \(outer); o++) for (size_t j = 0; j < \(k); j++) \(py)[o * \(k) + j] = \(px)[o * \(last) + \(pi)[j]];"
        )
    }

    /// LabelEncoder from integers to integers or floats (opset 2+: keys_int64s → values_int64s / values_floats).
    static func lowerLabelEncoder(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        guard let x = node.inputs.first ?? nil, let y = node.outputs[0] else { return }
        let keys = node.ints("keys_int64s") ?? node.tensor("keys_tensor")?.integers()
        guard let keys, c.dataType(x).isInteger else {
            throw c.notImplemented(node, index, "LabelEncoder with string or float keys (integer keys are supported)")
        }
        let t = "le\(index)_"
        let outType = c.dataType(y)
        let values: [String]
        let fallback: String
        if outType.isInteger {
            guard let ints = node.ints("values_int64s") ?? node.tensor("values_tensor")?.integers() else {
                throw c.notImplemented(node, index, "LabelEncoder to strings")
            }
            values = ints.map { "INT64_C(\($0))" }
            fallback = "INT64_C(\(node.int("default_int64") ?? node.tensor("default_tensor")?.integers()?.first ?? -1))"
        } else if outType == .float32 {
            guard let floats = floats(node, "values_floats") ?? node.tensor("values_tensor")?.doubles() else {
                throw c.notImplemented(node, index, "LabelEncoder to strings")
            }
            values = floatLiterals(floats)
            fallback = CSource.float(
                node.float("default_float") ?? Float(node.tensor("default_tensor")?.doubles()?.first ?? -0.0))
        } else {
            throw c.notImplemented(node, index, "LabelEncoder to \(outType.name)")
        }
        guard values.count == keys.count else {
            throw c.notImplemented(node, index, "\(keys.count) keys but \(values.count) values")
        }
        table(&c, "int64_t", t + "keys", keys.map { "INT64_C(\($0))" })
        table(&c, c.ctype(y), t + "values", values)
        let (px, py) = (c.pointer(x), c.pointer(y))
        c.emit("  for (size_t i = 0; i < \(c.count(y)); i++) { \(c.ctype(y)) v = \(fallback);")
        c.emit(
            "    for (size_t j = 0; j < \(keys.count); j++) if ((int64_t)\(px)[i] == \(t)keys[j]) { v = \(t)values[j]; break; }"
        )
        c.emit("    \(py)[i] = v; }")
    }
}

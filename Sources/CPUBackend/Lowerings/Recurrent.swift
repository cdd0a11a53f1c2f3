import Diagnostics
import ModelIR

/// LSTM, GRU and RNN: one time step after another in generated C, each gate a
/// dot product over the input and the previous hidden state. Forward, reverse
/// and bidirectional; layout 0 and 1; sequence_lens (steps past a sequence's
/// end leave its state alone and write zeros to Y); clip; peepholes; the
/// activations ONNX lists for these ops (alpha/beta where they take them).
enum RecurrentLowerings {
    struct Layout {
        var steps: Int
        var batch: Int
        var inputSize: Int
        var hidden: Int
        var directions: Int
        var batchMajor: Bool
    }

    static func layout(_ c: LoweringContext, _ node: Node, _ index: Int) throws -> Layout {
        guard let x = node.inputs[0], node.inputs.count > 2, let r = node.inputs[2] else {
            throw c.notImplemented(node, index, "\(node.opType) needs X, W and R")
        }
        let xs = c.shape(x)
        let batchMajor = (node.int("layout") ?? 0) == 1
        let hidden = node.int("hidden_size") ?? c.shape(r).last ?? 0
        let directions = (node.string("direction") ?? "forward") == "bidirectional" ? 2 : 1
        guard xs.count == 3 else { throw c.notImplemented(node, index, "X of rank \(xs.count)") }
        return Layout(
            steps: batchMajor ? xs[1] : xs[0], batch: batchMajor ? xs[0] : xs[1], inputSize: xs[2], hidden: hidden,
            directions: directions, batchMajor: batchMajor)
    }

    /// The C for activation `name` applied to `v`, with this op's alpha/beta at `slot`.
    static func activation(
        _ c: LoweringContext, _ node: Node, _ index: Int, _ name: String, slot: Int, _ v: String
    ) throws -> String {
        func list(_ name: String) -> [Float] {
            if case .floats(let values)? = node.attributes[name] { return values }
            return []
        }
        let alphas = list("activation_alpha")
        let betas = list("activation_beta")
        func alpha(_ fallback: Float) -> String { CSource.float(slot < alphas.count ? alphas[slot] : fallback) }
        func beta(_ fallback: Float) -> String { CSource.float(slot < betas.count ? betas[slot] : fallback) }
        switch name.lowercased() {
        case "sigmoid": return "(1.0f / (1.0f + exp(-(\(v)))))"
        case "tanh": return "tanh(\(v))"
        case "relu": return "fmax(\(v), 0.0f)"
        case "hardsigmoid": return "fmax(0.0f, fmin(1.0f, \(alpha(0.2)) * (\(v)) + \(beta(0.5))))"
        case "leakyrelu": return "((\(v)) >= 0 ? (\(v)) : \(alpha(0.01)) * (\(v)))"
        case "thresholdedrelu": return "((\(v)) > \(alpha(1)) ? (\(v)) : 0.0f)"
        case "scaledtanh": return "(\(alpha(1)) * tanh(\(beta(1)) * (\(v))))"
        case "elu": return "((\(v)) >= 0 ? (\(v)) : \(alpha(1)) * expm1(\(v)))"
        case "softsign": return "((\(v)) / (1.0f + fabs(\(v))))"
        case "softplus": return "log1p(exp(\(v)))"
        case "affine": return "(\(alpha(1)) * (\(v)) + \(beta(0)))"
        default: throw c.notImplemented(node, index, "activation '\(name)'")
        }
    }

    static func activations(_ node: Node, defaults: [String], directions: Int) -> [String] {
        var names: [String] = []
        if case .strings(let given)? = node.attributes["activations"] {
            names = given.map { String(decoding: $0, as: UTF8.self) }
        }
        let needed = defaults.count * directions
        if names.count < needed { names = (0..<needed).map { defaults[$0 % defaults.count] } }
        return names
    }

    static func lower(_ c: inout LoweringContext, _ node: Node, _ index: Int) throws {
        let shape = try layout(c, node, index)
        let (gates, defaults) =
            switch node.opType {
            case "LSTM": (4, ["Sigmoid", "Tanh", "Tanh"])
            case "GRU": (3, ["Sigmoid", "Tanh"])
            default: (1, ["Tanh"])
            }
        let names = activations(node, defaults: defaults, directions: shape.directions)
        func input(_ i: Int) -> ValueID? { i < node.inputs.count ? node.inputs[i] : nil }
        func output(_ i: Int) -> ValueID? { i < node.outputs.count ? node.outputs[i] : nil }
        let (h, batch, steps, inputSize) = (shape.hidden, shape.batch, shape.steps, shape.inputSize)
        guard let x = input(0), let w = input(1), let r = input(2) else { return }
        let lstm = node.opType == "LSTM"
        if lstm, (node.int("input_forget") ?? 0) != 0 {
            throw c.notImplemented(node, index, "LSTM with input_forget = 1")
        }
        let linearBeforeReset = node.opType == "GRU" && (node.int("linear_before_reset") ?? 0) != 0
        let clip = node.float("clip")
        // Scratch per batch row: the gates' input and hidden parts, then h, c and the new h.
        let rowFloats = gates * h * 2 + h * 3
        c.scratchFloats = max(c.scratchFloats, batch * rowFloats)
        let (px, pw, pr) = (c.pointer(x), c.pointer(w), c.pointer(r))
        let pb = input(3).map { c.pointer($0) }
        let pl = input(4).map { c.pointer($0) }
        let ph0 = input(5).map { c.pointer($0) }
        let pc0 = lstm ? input(6).map { c.pointer($0) } : nil
        let pp = lstm ? input(7).map { c.pointer($0) } : nil
        let py = output(0).map { c.pointer($0) }
        let pyh = output(1).map { c.pointer($0) }
        let pyc = lstm ? output(2).map { c.pointer($0) } : nil
        let dirs = shape.directions
        let xAt =
            shape.batchMajor
            ? "\(px)[(b * \(steps) + t) * \(inputSize) + j]" : "\(px)[(t * \(batch) + b) * \(inputSize) + j]"
        // Y: [steps, directions, batch, hidden] (layout 0) or [batch, steps, directions, hidden] (layout 1).
        let yAt =
            shape.batchMajor
            ? "((b * \(steps) + t) * \(dirs) + d) * \(h) + k" : "((t * \(dirs) + d) * \(batch) + b) * \(h) + k"
        // Y_h, Y_c: [directions, batch, hidden] (layout 0) or [batch, directions, hidden] (layout 1).
        let stateAt = shape.batchMajor ? "(b * \(dirs) + d) * \(h) + k" : "(d * \(batch) + b) * \(h) + k"
        func clipped(_ v: String) -> String {
            guard let clip else { return v }
            let limit = CSource.float(clip)
            return "fmin(fmax(\(v), -\(limit)), \(limit))"
        }
        // Activation i of this direction: names[direction * count + i], picked by d when they differ.
        func act(_ i: Int, _ v: String) throws -> String {
            let forward = try activation(c, node, index, names[i], slot: i, v)
            guard dirs == 2 else { return forward }
            let backward = try activation(c, node, index, names[defaults.count + i], slot: defaults.count + i, v)
            return forward == backward ? forward : "(d == 0 ? \(forward) : \(backward))"
        }
        let reverse = dirs == 2 ? "d == 1" : ((node.string("direction") ?? "forward") == "reverse" ? "1" : "0")
        c.emit("  for (size_t d = 0; d < \(dirs); d++) {")
        c.emit("    int reverse = \(reverse);")
        c.emit("    for (size_t b = 0; b < \(batch); b++) {")
        c.emit(
            "      float *gx = S + b * \(rowFloats), *gh = gx + \(gates * h), *hs = gh + \(gates * h), *cs = hs + \(h), *hn = cs + \(h);"
        )
        c.emit(
            "      size_t length = \(pl.map { "(size_t)\($0)[b]" } ?? "\(steps)"); if (length > \(steps)) length = \(steps);"
        )
        c.emit("      for (size_t k = 0; k < \(h); k++) {")
        c.emit("        hs[k] = \(ph0.map { "\($0)[\(stateAt)]" } ?? "0.0f");")
        c.emit("        cs[k] = \(pc0.map { "\($0)[\(stateAt)]" } ?? "0.0f"); }")
        if let py {
            c.emit(
                "      for (size_t t = length; t < \(steps); t++) for (size_t k = 0; k < \(h); k++) \(py)[\(yAt)] = 0.0f;"
            )
        }
        c.emit("      for (size_t s = 0; s < length; s++) {")
        c.emit("        size_t t = reverse ? length - 1 - s : s;")
        // Pre-activations x·Wᵀ + Wb and h·Rᵀ + Rb, kept apart (GRU's candidate needs them apart).
        c.emit("        for (size_t g = 0; g < \(gates * h); g++) {")
        c.emit("          const float *wr = \(pw) + (d * \(gates * h) + g) * \(inputSize);")
        c.emit("          const float *rr = \(pr) + (d * \(gates * h) + g) * \(h);")
        c.emit(
            "          float ax = \(pb.map { "\($0)[d * \(2 * gates * h) + g]" } ?? "0.0f"), ah = \(pb.map { "\($0)[d * \(2 * gates * h) + \(gates * h) + g]" } ?? "0.0f");"
        )
        c.emit("          for (size_t j = 0; j < \(inputSize); j++) ax += \(xAt) * wr[j];")
        c.emit("          for (size_t j = 0; j < \(h); j++) ah += hs[j] * rr[j];")
        c.emit("          gx[g] = ax; gh[g] = ah; }")
        c.emit("        for (size_t k = 0; k < \(h); k++) {")
        switch node.opType {
        case "LSTM":
            // Gate order i, o, f, c; peepholes P = [Pi, Po, Pf].
            let pi = pp.map { " + \($0)[d * \(3 * h) + k] * cs[k]" } ?? ""
            let pf = pp.map { " + \($0)[d * \(3 * h) + \(2 * h) + k] * cs[k]" } ?? ""
            let po = pp.map { " + \($0)[d * \(3 * h) + \(h) + k] * cn" } ?? ""
            c.emit("          float ig = \(try act(0, clipped("gx[k] + gh[k]\(pi)")));")
            c.emit("          float fg = \(try act(0, clipped("gx[\(2 * h) + k] + gh[\(2 * h) + k]\(pf)")));")
            c.emit("          float cg = \(try act(1, clipped("gx[\(3 * h) + k] + gh[\(3 * h) + k]")));")
            c.emit("          float cn = fg * cs[k] + ig * cg;")
            c.emit("          float og = \(try act(0, clipped("gx[\(h) + k] + gh[\(h) + k]\(po)")));")
            c.emit("          hn[k] = og * \(try act(2, "cn")); cs[k] = cn; }")
        case "GRU":
            // Gate order z, r, h.
            c.emit("          float zg = \(try act(0, clipped("gx[k] + gh[k]")));")
            c.emit("          float rg = \(try act(0, clipped("gx[\(h) + k] + gh[\(h) + k]")));")
            if linearBeforeReset {
                c.emit("          float hg = \(try act(1, clipped("gx[\(2 * h) + k] + rg * gh[\(2 * h) + k]")));")
            } else {
                // The candidate needs (r ⊙ h)·Rhᵀ over every unit's reset gate: z waits in hn, r in gh.
                c.emit("          hn[k] = zg; gh[k] = rg; }")
                c.emit("        for (size_t k = 0; k < \(h); k++) {")
                c.emit("          const float *rr = \(pr) + (d * \(3 * h) + \(2 * h) + k) * \(h);")
                c.emit("          float rh = \(pb.map { "\($0)[d * \(6 * h) + \(5 * h) + k]" } ?? "0.0f"), zg = hn[k];")
                c.emit("          for (size_t j = 0; j < \(h); j++) rh += gh[j] * hs[j] * rr[j];")
                c.emit("          float hg = \(try act(1, clipped("gx[\(2 * h) + k] + rh")));")
            }
            c.emit("          hn[k] = (1.0f - zg) * hg + zg * hs[k]; }")
        default:
            c.emit("          hn[k] = \(try act(0, clipped("gx[k] + gh[k]"))); }")
        }
        c.emit("        for (size_t k = 0; k < \(h); k++) hs[k] = hn[k];")
        if let py { c.emit("        for (size_t k = 0; k < \(h); k++) \(py)[\(yAt)] = hs[k];") }
        c.emit("      }")
        if let pyh { c.emit("      for (size_t k = 0; k < \(h); k++) \(pyh)[\(stateAt)] = hs[k];") }
        if let pyc { c.emit("      for (size_t k = 0; k < \(h); k++) \(pyc)[\(stateAt)] = cs[k];") }
        c.emit("    }")
        c.emit("  }")
    }
}

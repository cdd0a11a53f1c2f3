import Diagnostics

/// Kiln's own shape inference over the IR, with propagation of small integer
/// tensors (Shape → Gather → Concat → Reshape) so shape arithmetic resolves.
///
/// It runs after libonnx's inference as a cross-check, and alone for models
/// newer than the bundled libonnx (then every op must have a rule here).
public struct ShapeInference {
    public enum Mode: Sendable {
        /// Types already on values came from libonnx: rules must agree with
        /// them; ops without a rule keep them.
        case crossCheck
        /// Kiln is the only authority: every op needs a rule.
        case authority
    }

    /// What inference covered, for the stage record and reasons.
    public struct Report: Sendable, Equatable {
        public var nodesInferred = 0
        public var nodesTakenFromONNX = 0
        /// Ops (qualified, with the opset) that had no rule, in first-seen order.
        public var uncoveredOps: [String] = []
    }

    public var opset: Int
    public var mode: Mode

    public init(opset: Int, mode: Mode) {
        self.opset = opset
        self.mode = mode
    }

    public func run(_ graph: inout Graph) throws -> Report {
        var known: [ValueID: KnownInts] = [:]
        return try run(&graph, known: &known)
    }

    /// Also hands back every small integer value inference could compute (shape arithmetic), for folding.
    public func run(_ graph: inout Graph, known: inout [ValueID: KnownInts]) throws -> Report {
        var report = Report()
        for (id, constant) in graph.initializers where constant.dataType.isInteger && constant.elementCount <= 1024 {
            if let values = constant.integers() { known[id] = KnownInts(shape: constant.shape, values: values) }
        }
        if mode == .authority {
            // Name every op without a rule at once, before inference stumbles over the first gap.
            for node in graph.nodes where !hasRule(node) { recordUncovered(node, &report) }
            if !report.uncoveredOps.isEmpty { return report }
        }
        for (index, node) in graph.nodes.enumerated() {
            guard let rule = ShapeRules.table[node.qualifiedOpType] else {
                recordUncovered(node, &report)
                continue
            }
            let results: [InferredOutput]
            do {
                results = try infer(node, index, rule, graph, known)
            } catch let error as KilnError where mode == .crossCheck && error.party == .client {
                // libonnx's data propagation reaches some shapes Kiln's rules do not:
                // when it found static types for every output, take them.
                let outputs = node.outputs.compactMap { $0 }
                guard outputs.allSatisfy({ graph[$0].type?.staticShape != nil }) else { throw error }
                report.nodesTakenFromONNX += 1
                continue
            }
            report.nodesInferred += 1
            for (slot, output) in node.outputs.enumerated() {
                guard let output, slot < results.count else { continue }
                let inferred = results[slot]
                if mode == .crossCheck, let existing = graph[output].type, let existingShape = existing.staticShape,
                    existingShape != inferred.type.staticShape || existing.dataType != inferred.type.dataType
                {
                    throw KilnError.server(
                        .check,
                        "Kiln's shape inference gives \(inferred.type) for output \(slot) of node \(describe(node, index)) "
                            + "but ONNX's gives \(existing.dataType.name)\(shapeText(existingShape)); please report this model"
                    )
                }
                graph[output].type = inferred.type
                if let values = inferred.values { known[output] = values }
            }
        }
        return report
    }

    private func infer(
        _ node: Node, _ index: Int, _ rule: ShapeRule, _ graph: Graph, _ known: [ValueID: KnownInts]
    ) throws -> [InferredOutput] {
        let inputs: [TensorType?] = node.inputs.map { id in id.flatMap { graph[$0].type } }
        for (slot, type) in inputs.enumerated() where node.inputs[slot] != nil {
            guard let type, type.staticShape != nil else {
                throw KilnError.client(
                    .modelCheck,
                    "input \(slot) of node \(describe(node, index)) has no static shape "
                        + "(\(type.map { shapeText($0.shape) } ?? "no type")); give every model input a shape in DataInputConfig"
                )
            }
        }
        let context = ShapeContext(
            node: node, nodeIndex: index, opset: opset, inputTypes: inputs,
            inputValues: node.inputs.map { $0.flatMap { known[$0] } },
            inputConstants: node.inputs.map { $0.flatMap { graph.initializers[$0] } })
        return try rule(context)
    }

    private func hasRule(_ node: Node) -> Bool {
        ShapeRules.table[node.qualifiedOpType] != nil
    }

    /// An op without a Kiln rule: fine when libonnx typed it, a gap when Kiln is the authority.
    private func recordUncovered(_ node: Node, _ report: inout Report) {
        switch mode {
        case .authority:
            let label = node.domain.isEmpty ? "\(node.opType) (opset \(opset))" : node.qualifiedOpType
            if !report.uncoveredOps.contains(label) { report.uncoveredOps.append(label) }
        case .crossCheck:
            report.nodesTakenFromONNX += 1
        }
    }
}

/// A small integer tensor whose value is known while compiling (shape arithmetic).
public struct KnownInts: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Int]

    public init(shape: [Int], values: [Int]) {
        self.shape = shape
        self.values = values
    }

    public static func vector(_ values: [Int]) -> KnownInts { KnownInts(shape: [values.count], values: values) }
}

/// What a shape rule sees: the node, its inputs' static types, and the
/// values of inputs known at compile time.
public struct ShapeContext {
    public var node: Node
    public var nodeIndex: Int
    public var opset: Int
    public var inputTypes: [TensorType?]
    public var inputValues: [KnownInts?]
    /// Inputs that are initializers (float ones too: Resize scales).
    public var inputConstants: [Constant?] = []

    public init(
        node: Node, nodeIndex: Int, opset: Int, inputTypes: [TensorType?], inputValues: [KnownInts?],
        inputConstants: [Constant?] = []
    ) {
        self.node = node
        self.nodeIndex = nodeIndex
        self.opset = opset
        self.inputTypes = inputTypes
        self.inputValues = inputValues
        self.inputConstants = inputConstants
    }

    public var inputCount: Int { node.inputs.count }

    public func has(_ slot: Int) -> Bool { slot < node.inputs.count && node.inputs[slot] != nil }

    public func shape(_ slot: Int) -> [Int] { inputTypes[slot]?.staticShape ?? [] }

    public func dataType(_ slot: Int) -> DataType { inputTypes[slot]?.dataType ?? .float32 }

    public func value(_ slot: Int) -> KnownInts? { has(slot) ? inputValues[slot] : nil }

    /// The value of an input that must be known at compile time.
    public func requiredValue(_ slot: Int, _ what: String) throws -> [Int] {
        guard let known = value(slot) else {
            throw fail(
                "its \(what) (input \(slot)) is computed at run time; Kiln needs it at compile time "
                    + "(static shapes: fix the input shapes in DataInputConfig or make \(what) a constant)")
        }
        return known.values
    }

    public func fail(_ message: String) -> KilnError {
        KilnError.client(.modelCheck, "node \(describe(node, nodeIndex)): \(message)")
    }

    /// Normalizes a possibly negative axis against `rank`.
    public func axis(_ axis: Int, rank: Int) throws -> Int {
        let normalized = axis < 0 ? axis + rank : axis
        guard normalized >= 0 && normalized < rank else {
            throw fail("axis \(axis) is out of range for rank \(rank)")
        }
        return normalized
    }
}

/// One rule's answer for one output.
public struct InferredOutput {
    public var type: TensorType
    public var values: KnownInts?

    public init(_ dataType: DataType, _ shape: [Int], values: KnownInts? = nil) {
        type = TensorType(dataType, static: shape)
        self.values = values
    }
}

public typealias ShapeRule = @Sendable (ShapeContext) throws -> [InferredOutput]

/// "Conv 'conv1' (#3)": a node as failure reasons name it.
public func describe(_ node: Node, _ index: Int) -> String {
    node.name.isEmpty
        ? "#\(index) (\(node.qualifiedOpType))" : "#\(index) \(quoted(node.name)) (\(node.qualifiedOpType))"
}

import Diagnostics
import ModelIR

/// Control flow made static before shape inference, so the rest of Kiln sees
/// one flat graph:
///
/// - `If`: both branches inlined, each node guarded by the condition (the C
///   runs only the taken branch), and a `kiln::Select` per output picking the
///   taken branch's value. A condition known at compile time keeps one branch.
/// - `Loop` with a trip count known at compile time: unrolled, iteration by
///   iteration; scan outputs stacked with Unsqueeze + Concat.
/// - `Scan` (opset 9+): unrolled over the scanned axis, slices taken with Gather.
///
/// Subgraphs see the values of enclosing graphs by name, as ONNX scopes them.
public struct ControlFlowExpansion {
    /// Unrolling stops here: past this many inlined nodes the C would be unreasonably large.
    public static let nodeLimit = 200_000

    public var opset: Int
    /// The opset the model was written for (Scan changed meaning at 9; the converter does not rewrite it).
    public var originalOpset: Int
    private var graph: Graph
    private var nodes: [Node] = []
    private var notes: [String] = []
    private var serial = 0

    /// Expands every If, Loop and Scan of `graph`; returns notes for the user (folded conditions, unrolled loops).
    public static func expand(_ graph: inout Graph, opset: Int, originalOpset: Int) throws -> [String] {
        guard graph.nodes.contains(where: { Self.isControlFlow($0) }) else { return [] }
        var expansion = ControlFlowExpansion(opset: opset, originalOpset: originalOpset, graph: graph)
        expansion.graph.nodes = []
        var scope: [String: ValueID] = [:]
        for (index, value) in graph.values.enumerated() { scope[value.name] = ValueID(index) }
        for (index, node) in graph.nodes.enumerated() {
            try expansion.emit(node, index: index, scope: scope, guards: [])
        }
        expansion.graph.nodes = expansion.nodes
        graph = expansion.graph
        return expansion.notes
    }

    static func isControlFlow(_ node: Node) -> Bool {
        (node.domain.isEmpty || node.domain == "ai.onnx") && ["If", "Loop", "Scan"].contains(node.opType)
    }

    private init(opset: Int, originalOpset: Int, graph: Graph) {
        self.opset = opset
        self.originalOpset = originalOpset
        self.graph = graph
    }

    private func fail(_ node: Node, _ index: Int, _ message: String) -> KilnError {
        .client(.operatorAttributeNotImplemented, "node \(describe(node, index)): \(message)")
    }

    /// Appends `node` (already in the target graph's value space) or its expansion.
    private mutating func emit(_ node: Node, index: Int, scope: [String: ValueID], guards: [NodeGuard]) throws {
        guard Self.isControlFlow(node) else {
            var node = node
            node.guards = guards + node.guards
            nodes.append(node)
            guard nodes.count <= Self.nodeLimit else {
                throw fail(node, index, "unrolling control flow made more than \(Self.nodeLimit) nodes")
            }
            return
        }
        switch node.opType {
        case "If": try expandIf(node, index: index, scope: scope, guards: guards)
        case "Loop": try expandLoop(node, index: index, scope: scope, guards: guards)
        default: try expandScan(node, index: index, scope: scope, guards: guards)
        }
    }

    // MARK: inlining

    private mutating func fresh(_ name: String, type: TensorType?) -> ValueID {
        serial += 1
        return graph.addValue(Value(name: "\(name)~\(serial)", type: type))
    }

    private mutating func constant(_ value: Constant, _ name: String) -> ValueID {
        let id = fresh(name, type: TensorType(value.dataType, static: value.shape))
        graph.initializers[id] = value
        return id
    }

    /// Inlines `body` with its inputs bound to `bindings`, under `guards`; returns its outputs' values.
    private mutating func inline(
        _ body: Graph, bindings: [ValueID], scope: [String: ValueID], guards: [NodeGuard], label: String, index: Int
    ) throws -> [ValueID] {
        var map: [ValueID: ValueID] = [:]
        for (input, bound) in zip(body.inputs, bindings) { map[input] = bound }
        for (id, value) in body.initializers { map[id] = constant(value, body[id].name) }
        var produced: Set<ValueID> = []
        for node in body.nodes { for case let id? in node.outputs { produced.insert(id) } }
        var innerScope = scope
        func resolve(_ id: ValueID) throws -> ValueID {
            if let mapped = map[id] { return mapped }
            // Not an input, initializer or node output of the body: a value of an enclosing graph.
            guard !produced.contains(id), let outer = scope[body[id].name] else {
                throw KilnError.client(
                    .modelCheck,
                    "\(label): subgraph value \(quoted(body[id].name)) is not defined in any enclosing graph")
            }
            map[id] = outer
            return outer
        }
        for (id, mapped) in map { innerScope[body[id].name] = mapped }
        for node in body.nodes {
            var inlined = node
            inlined.inputs = try node.inputs.map { try $0.map(resolve) }
            inlined.outputs = node.outputs.map { output in
                output.map { id in
                    let target = fresh(body[id].name, type: body[id].type)
                    map[id] = target
                    innerScope[body[id].name] = target
                    return target
                }
            }
            inlined.guards = node.guards.map {
                NodeGuard(condition: map[$0.condition] ?? $0.condition, whenTrue: $0.whenTrue)
            }
            try emit(inlined, index: index, scope: innerScope, guards: guards)
        }
        return try body.outputs.map(resolve)
    }

    private func subgraph(_ node: Node, _ name: String, _ index: Int) throws -> Graph {
        guard case .graph(let body)? = node.attributes[name] else {
            throw fail(node, index, "attribute '\(name)' is missing or not a graph")
        }
        return body
    }

    private mutating func identity(_ source: ValueID, _ target: ValueID, guards: [NodeGuard]) {
        nodes.append(Node(name: "", opType: "Identity", inputs: [source], outputs: [target]))
        nodes[nodes.count - 1].guards = guards
    }

    private func constantBool(_ id: ValueID?) -> Bool? {
        guard let id, let value = graph.initializers[id], value.elementCount == 1 else { return nil }
        return value.doubles()?.first.map { $0 != 0 }
    }

    private func constantInt(_ id: ValueID?) -> Int? {
        guard let id, let value = graph.initializers[id], value.elementCount == 1 else { return nil }
        return value.integers()?.first
    }

    // MARK: If

    private mutating func expandIf(_ node: Node, index: Int, scope: [String: ValueID], guards: [NodeGuard]) throws {
        guard let condition = node.inputs.first ?? nil else { throw fail(node, index, "If has no condition") }
        let thenBranch = try subgraph(node, "then_branch", index)
        let elseBranch = try subgraph(node, "else_branch", index)
        let label = "If \(describe(node, index))"
        if let fixed = constantBool(condition) {
            let branch = fixed ? thenBranch : elseBranch
            let results = try inline(branch, bindings: [], scope: scope, guards: guards, label: label, index: index)
            for (result, output) in zip(results, node.outputs) {
                if let output { identity(result, output, guards: guards) }
            }
            notes.append(
                "\(label): the condition is \(fixed) at compile time; only the \(fixed ? "then" : "else") branch was compiled"
            )
            return
        }
        guard thenBranch.outputs.count == node.outputs.count, elseBranch.outputs.count == node.outputs.count else {
            throw fail(
                node, index,
                "its branches have \(thenBranch.outputs.count) and \(elseBranch.outputs.count) outputs for \(node.outputs.count)"
            )
        }
        // Sequences and optionals have no tensor form (libonnx types If outputs that are tensors).
        for (slot, branchOutput) in thenBranch.outputs.enumerated() where thenBranch[branchOutput].type == nil {
            let producer = thenBranch.nodes.first { $0.outputs.contains(branchOutput) }?.opType ?? ""
            if producer.hasPrefix("Sequence") || producer.hasPrefix("Optional") || producer == "SplitToSequence" {
                throw KilnError.client(
                    .modelCheck,
                    "node \(describe(node, index)): output \(slot) is a sequence or optional (made by \(producer)), not a tensor; "
                        + "Kiln compiles tensors only")
            }
        }
        let thenResults = try inline(
            thenBranch, bindings: [], scope: scope, guards: guards + [NodeGuard(condition: condition, whenTrue: true)],
            label: label, index: index)
        let elseResults = try inline(
            elseBranch, bindings: [], scope: scope, guards: guards + [NodeGuard(condition: condition, whenTrue: false)],
            label: label, index: index)
        for (slot, output) in node.outputs.enumerated() {
            guard let output else { continue }
            var select = Node(
                name: node.name, opType: "Select", domain: "kiln",
                inputs: [condition, thenResults[slot], elseResults[slot]],
                outputs: [output])
            select.guards = guards
            nodes.append(select)
        }
    }

    // MARK: Loop

    private mutating func expandLoop(_ node: Node, index: Int, scope: [String: ValueID], guards: [NodeGuard]) throws {
        let body = try subgraph(node, "body", index)
        let label = "Loop \(describe(node, index))"
        let tripInput = node.inputs.first ?? nil
        guard let trips = constantInt(tripInput) else {
            throw fail(
                node, index,
                tripInput == nil
                    ? "a Loop without a trip count runs until a condition computed at run time; Kiln unrolls loops whose trip count is known at compile time"
                    : "the trip count (input M) is computed at run time; Kiln unrolls loops whose trip count is known at compile time (make it a constant, or fix the input with DataInputConfig's {\"value\": ...})"
            )
        }
        let initialCondition = node.inputs.count > 1 ? node.inputs[1] : nil
        if initialCondition != nil, constantBool(initialCondition) == nil {
            throw fail(
                node, index,
                "the initial condition is computed at run time (Kiln unrolls loops with a fixed trip count)")
        }
        let runs = constantBool(initialCondition) == false ? 0 : max(trips, 0)
        let carried = Array(node.inputs.dropFirst(2))
        let carriedCount = carried.count
        guard body.inputs.count == carriedCount + 2, body.outputs.count >= carriedCount + 1 else {
            throw fail(node, index, "the body's inputs and outputs do not match the loop-carried values")
        }
        let scanCount = body.outputs.count - 1 - carriedCount
        if runs == 0 && scanCount > 0 {
            throw fail(node, index, "a Loop that runs zero times has scan outputs of unknown shape")
        }
        // The body must keep going on its own: its condition output is its condition input or a true constant.
        let conditionOut = body.outputs[0]
        let passesCondition =
            conditionOut == body.inputs[1] || body.initializers[conditionOut].flatMap { $0.doubles()?.first } == 1
            || body.nodes.contains {
                $0.opType == "Identity" && $0.outputs.first == conditionOut && $0.inputs.first == body.inputs[1]
            }
            || body.nodes.contains {
                $0.opType == "Constant" && $0.outputs.first == conditionOut
                    && ($0.tensor("value")?.doubles()?.first ?? 0) != 0
            }
        guard passesCondition else {
            throw fail(
                node, index,
                "the body computes its continue-condition at run time (a data-dependent trip count); Kiln unrolls loops that always run M times"
            )
        }
        var state = carried.map { $0! }
        var scans: [[ValueID]] = Array(repeating: [], count: scanCount)
        let always = constant(Constant(.bool, shape: [], values: [UInt8(1)]), "loop.cond")
        for iteration in 0..<runs {
            let counter = constant(Constant(.int64, shape: [], values: [Int64(iteration)]), "loop.i")
            let results = try inline(
                body, bindings: [counter, always] + state, scope: scope, guards: guards, label: label, index: index)
            state = Array(results[1...carriedCount])
            for k in 0..<scanCount { scans[k].append(results[1 + carriedCount + k]) }
        }
        for (slot, output) in node.outputs.enumerated() {
            guard let output else { continue }
            if slot < carriedCount {
                identity(state[slot], output, guards: guards)
            } else {
                stack(scans[slot - carriedCount], axis: 0, into: output, guards: guards)
            }
        }
        notes.append("\(label): unrolled \(runs) time(s)")
    }

    /// output = Concat(Unsqueeze(v, axis) for v in values, axis).
    private mutating func stack(_ values: [ValueID], axis: Int, into output: ValueID, guards: [NodeGuard]) {
        var parts: [ValueID] = []
        for value in values {
            let part = fresh(graph[value].name + ".unsqueezed", type: nil)
            var unsqueeze: Node
            if opset >= 13 {
                let axes = constant(Constant(.int64, shape: [1], values: [Int64(axis)]), "axes")
                unsqueeze = Node(name: "", opType: "Unsqueeze", inputs: [value, axes], outputs: [part])
            } else {
                unsqueeze = Node(
                    name: "", opType: "Unsqueeze", inputs: [value], outputs: [part], attributes: ["axes": .ints([axis])]
                )
            }
            unsqueeze.guards = guards
            nodes.append(unsqueeze)
            parts.append(part)
        }
        var concat = Node(
            name: "", opType: "Concat", inputs: parts, outputs: [output], attributes: ["axis": .int(axis)])
        concat.guards = guards
        nodes.append(concat)
    }

    // MARK: Scan

    private mutating func expandScan(_ node: Node, index: Int, scope: [String: ValueID], guards: [NodeGuard]) throws {
        guard min(opset, originalOpset) >= 9 else {
            throw fail(node, index, "Scan before opset 9 (with a batch axis) is not supported")
        }
        let body = try subgraph(node, "body", index)
        let label = "Scan \(describe(node, index))"
        let scanInputs = node.int("num_scan_inputs") ?? 0
        let stateCount = node.inputs.count - scanInputs
        guard scanInputs > 0, stateCount >= 0, body.inputs.count == node.inputs.count,
            body.outputs.count == node.outputs.count
        else {
            throw fail(node, index, "the body's inputs and outputs do not match the Scan's")
        }
        let inputAxes = node.ints("scan_input_axes") ?? Array(repeating: 0, count: scanInputs)
        let inputDirections = node.ints("scan_input_directions") ?? Array(repeating: 0, count: scanInputs)
        let scanOutputs = node.outputs.count - stateCount
        let outputAxes = node.ints("scan_output_axes") ?? Array(repeating: 0, count: scanOutputs)
        let outputDirections = node.ints("scan_output_directions") ?? Array(repeating: 0, count: scanOutputs)
        var length: Int?
        var axes: [Int] = []
        for slot in 0..<scanInputs {
            guard let input = node.inputs[stateCount + slot], let shape = graph[input].type?.staticShape else {
                throw fail(node, index, "scan input \(slot) has no static shape")
            }
            let axis = inputAxes[slot] < 0 ? inputAxes[slot] + shape.count : inputAxes[slot]
            guard axis >= 0, axis < shape.count else { throw fail(node, index, "scan_input_axes is out of range") }
            guard length == nil || length == shape[axis] else {
                throw fail(node, index, "the scan inputs have different lengths along their scan axes")
            }
            length = shape[axis]
            axes.append(axis)
        }
        let steps = length ?? 0
        guard steps > 0 || scanOutputs == 0 else {
            throw fail(node, index, "a Scan over zero steps has outputs of unknown shape")
        }
        var state = node.inputs[..<stateCount].map { $0! }
        var scans: [[ValueID]] = Array(repeating: [], count: scanOutputs)
        for step in 0..<steps {
            var slices: [ValueID] = []
            for slot in 0..<scanInputs {
                let source = node.inputs[stateCount + slot]!
                let at = inputDirections[slot] == 1 ? steps - 1 - step : step
                let position = constant(Constant(.int64, shape: [], values: [Int64(at)]), "scan.t")
                let slice = fresh(graph[source].name + ".step", type: nil)
                var gather = Node(
                    name: "", opType: "Gather", inputs: [source, position], outputs: [slice],
                    attributes: ["axis": .int(axes[slot])])
                gather.guards = guards
                nodes.append(gather)
                slices.append(slice)
            }
            let results = try inline(
                body, bindings: state + slices, scope: scope, guards: guards, label: label, index: index)
            state = Array(results[..<stateCount])
            for k in 0..<scanOutputs { scans[k].append(results[stateCount + k]) }
        }
        for (slot, output) in node.outputs.enumerated() {
            guard let output else { continue }
            if slot < stateCount {
                identity(state[slot], output, guards: guards)
                continue
            }
            let k = slot - stateCount
            let values = outputDirections[k] == 1 ? Array(scans[k].reversed()) : scans[k]
            // A negative axis counts from the end of the stacked output (one rank more than each step's).
            let stepRank =
                graph[output].type?.staticShape.map { $0.count - 1 } ?? body[body.outputs[slot]].type?.shape?.count
            var axis = outputAxes[k]
            if axis < 0, let stepRank { axis += stepRank + 1 }
            stack(values, axis: max(axis, 0), into: output, guards: guards)
        }
        notes.append("\(label): unrolled over \(steps) step(s)")
    }
}

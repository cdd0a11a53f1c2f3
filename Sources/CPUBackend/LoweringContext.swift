import Diagnostics
import ModelIR

/// The state of lowering one graph to C: the memory plan, the lines of the
/// run function, and helpers every op's lowering uses (typed pointers,
/// shapes, constants, elementwise loop nests).
struct LoweringContext {
    let graph: Graph
    let opset: Int
    let plan: MemoryPlan
    private(set) var lines: [String] = []
    private(set) var declared: Set<ValueID> = []
    private(set) var declarations: [String] = []
    /// File-scope C (helper functions) placed before the run function, each block once.
    private(set) var preamble: [String] = []
    private var preambleKeys: Set<String> = []
    /// Scratch floats the kernels need beyond the arena (im2col), as the maximum over nodes.
    var scratchFloats = 0

    init(graph: Graph, opset: Int, plan: MemoryPlan) {
        self.graph = graph
        self.opset = opset
        self.plan = plan
    }

    mutating func emit(_ line: String) { lines.append(line) }

    /// Adds file-scope `lines` to the preamble unless a block named `key` is there already.
    mutating func emitOnce(_ key: String, _ lines: [String]) {
        if preambleKeys.insert(key).inserted { preamble += lines }
    }

    func shape(_ id: ValueID) -> [Int] { graph[id].type?.staticShape ?? [] }

    func dataType(_ id: ValueID) -> DataType { graph[id].type?.dataType ?? .float32 }

    func count(_ id: ValueID) -> Int { elementCount(shape(id)) ?? 0 }

    func ctype(_ id: ValueID) -> String { CSource.type(dataType(id)) ?? "uint8_t" }

    /// The C variable that points at a value's data, declared on first use.
    mutating func pointer(_ id: ValueID) -> String {
        let name = "v\(id.index)"
        if declared.insert(id).inserted {
            let type = ctype(id)
            let source: String
            switch plan.storage[id] {
            case .input(let index)?: source = "(\(type) *)in[\(index)]"
            case .output(let index)?: source = "(\(type) *)out[\(index)]"
            case .weight(let offset)?: source = "(\(type) *)(W + \(offset))"
            case .arena(let offset)?: source = "(\(type) *)(A + \(offset))"
            case nil: source = "(\(type) *)0"
            }
            declarations.append("  \(type) *\(name) = \(source);")
        }
        return name
    }

    /// The values of a constant integer input (axes, pads, shapes, ...).
    func constantIntegers(_ id: ValueID?) -> [Int]? {
        guard let id, let constant = graph.initializers[id] else { return nil }
        return constant.integers()
    }

    func constantDoubles(_ id: ValueID?) -> [Double]? {
        guard let id, let constant = graph.initializers[id] else { return nil }
        return constant.doubles()
    }

    func notImplemented(_ node: Node, _ index: Int, _ what: String) -> KilnError {
        .client(.operatorAttributeNotImplemented, "node \(describe(node, index)): \(what)")
    }

    // MARK: loops

    /// Emits `output[i] = expression(operands at i)` over the output's shape,
    /// with NumPy broadcasting of each operand.
    mutating func emitElementwise(output: ValueID, operands: [ValueID], expression: ([String]) -> String) {
        let outShape = shape(output)
        let out = pointer(output)
        let names = operands.map { pointer($0) }
        let total = elementCount(outShape) ?? 0
        let simple = operands.allSatisfy { shape($0) == outShape || count($0) == 1 }
        if simple {
            let loads = zip(operands, names).map { count($0.0) == 1 && total != 1 ? "\($0.1)[0]" : "\($0.1)[i]" }
            emit("  for (size_t i = 0; i < \(total); i++) \(out)[i] = \(expression(loads));")
            return
        }
        let rank = outShape.count
        var indexes: [String] = []
        for (axis, dim) in outShape.enumerated() {
            emit("  \(String(repeating: " ", count: axis * 2))for (size_t i\(axis) = 0; i\(axis) < \(dim); i\(axis)++)")
            indexes.append("i\(axis)")
        }
        let loads = zip(operands, names).map { operand, name -> String in
            let operandShape = shape(operand)
            var terms: [String] = []
            var step = 1
            for axis in stride(from: operandShape.count - 1, through: 0, by: -1) {
                let outAxis = axis + rank - operandShape.count
                if operandShape[axis] != 1 {
                    terms.append(step == 1 ? indexes[outAxis] : "\(indexes[outAxis]) * \(step)")
                }
                step *= operandShape[axis]
            }
            return "\(name)[\(terms.isEmpty ? "0" : terms.joined(separator: " + "))]"
        }
        var flat: [String] = []
        var step = 1
        for axis in stride(from: rank - 1, through: 0, by: -1) {
            flat.append(step == 1 ? indexes[axis] : "\(indexes[axis]) * \(step)")
            step *= outShape[axis]
        }
        emit(
            "  \(String(repeating: " ", count: rank * 2))\(out)[\(flat.joined(separator: " + "))] = \(expression(loads));"
        )
    }

    /// Copies a value into another of the same byte size (reshapes and identities).
    mutating func emitCopy(from source: ValueID, to target: ValueID) {
        let bytes = count(source) * (dataType(source).byteSize ?? 1)
        let from = pointer(source)
        let to = pointer(target)
        if bytes > 0 { emit("  if ((void *)\(to) != (void *)\(from)) memmove(\(to), \(from), \(bytes));") }
    }

    /// A `static const size_t name[] = {...};` for kernels that take shape arrays.
    mutating func emitSizes(_ name: String, _ values: [Int]) {
        emit("  static const size_t \(name)[] = \(CSource.sizes(values));")
    }
}

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
    mutating func emitElementwise(
        output: ValueID, operands: [ValueID], parallel: Bool = false, expression: ([String]) -> String
    ) {
        emitElementwise(output: output, operands: operands, parallel: parallel) { ([], expression($0)) }
    }

    /// The same loop nest with a body of statements before the stored expression (locals of a fused chain).
    /// `parallel`: when the expressions read only the operands, the loop runs as a function over ranges of
    /// the output (of its leading axes when operands broadcast), spread over the runtime's threads from
    /// `KK_PARALLEL_ELEMENTS` elements.
    mutating func emitElementwise(
        output: ValueID, operands: [ValueID], parallel: Bool = false,
        body: ([String]) -> (statements: [String], result: String)
    ) {
        func statement(_ target: String, _ loads: [String]) -> String {
            let (statements, result) = body(loads)
            let store = "\(target) = \(result);"
            return statements.isEmpty ? store : "{ \((statements + [store]).joined(separator: " ")) }"
        }
        let outShape = shape(output)
        let out = pointer(output)
        let names = operands.map { pointer($0) }
        let total = elementCount(outShape) ?? 0
        // The loop nest: one flat loop when no operand broadcasts but as a scalar, else one loop per axis.
        let flatLoop = operands.allSatisfy { shape($0) == outShape || count($0) == 1 }
        let dims = flatLoop ? [total] : outShape
        let indexes = flatLoop ? ["i"] : dims.indices.map { "i\($0)" }
        let loads: [String]
        if flatLoop {
            loads = zip(operands, names).map { count($0.0) == 1 && total != 1 ? "\($0.1)[0]" : "\($0.1)[i]" }
        } else {
            loads = zip(operands, names).map { operand, name -> String in
                let operandShape = shape(operand)
                var terms: [String] = []
                var step = 1
                for axis in stride(from: operandShape.count - 1, through: 0, by: -1) {
                    let outAxis = axis + dims.count - operandShape.count
                    if operandShape[axis] != 1 {
                        terms.append(step == 1 ? indexes[outAxis] : "\(indexes[outAxis]) * \(step)")
                    }
                    step *= operandShape[axis]
                }
                return "\(name)[\(terms.isEmpty ? "0" : terms.joined(separator: " + "))]"
            }
        }
        var flat: [String] = []
        var step = 1
        for axis in stride(from: dims.count - 1, through: 0, by: -1) {
            flat.append(step == 1 ? indexes[axis] : "\(indexes[axis]) * \(step)")
            step *= dims[axis]
        }
        let store = statement("\(out)[\(flat.joined(separator: " + "))]", loads)
        /// Loops over axes from `first` on, around the store, each line indented by `indent` more.
        func loops(from first: Int, indent: Int) -> [String] {
            (first..<dims.count).map {
                String(repeating: " ", count: indent + ($0 - first) * 2)
                    + "for (size_t \(indexes[$0]) = 0; \(indexes[$0]) < \(dims[$0]); \(indexes[$0])++)"
            } + [String(repeating: " ", count: indent + (dims.count - first) * 2) + store]
        }
        guard parallel && total > 1 else {
            for line in loops(from: 0, indent: 2) { emit(line) }
            return
        }
        // Ranges of the flat loop's elements, or of the leading axes (enough of them to make 16 ranges), for the
        // threads; the helper names the pointers as the run function does, so the loads read the same.
        var values = [output]
        for operand in operands where !values.contains(operand) { values.append(operand) }
        var ranges = total
        var loop = ["  for (size_t i = first; i < last; i++) \(store)"]
        if !flatLoop {
            var lead = 0
            ranges = 1
            while lead < dims.count && ranges < 16 {
                ranges *= dims[lead]
                lead += 1
            }
            loop = ["  for (size_t r = first; r < last; r++) {", "    size_t rest = r;"]
            for axis in stride(from: lead - 1, through: 0, by: -1) {
                loop.append("    size_t \(indexes[axis]) = rest % \(dims[axis]); rest /= \(dims[axis]);")
            }
            loop += loops(from: lead, indent: 4) + ["  }"]
        }
        emitParallelRanges(
            "kiln_elementwise_\(output.index)", pointers: values.map { pointer($0) }, count: ranges, work: total,
            body: values.enumerated().map { "  \(ctype($1)) *v\($1.index) = (\(ctype($1)) *)p[\($0)];" } + loop)
    }

    /// A file-scope function `name(context, first, last)` whose `body` does ranges [first, last) of `count`
    /// (`p`, the context, holds `pointers` in order), and the call that spreads them over the runtime's threads
    /// when the node's `work` (elements) reaches `KK_PARALLEL_ELEMENTS`.
    mutating func emitParallelRanges(_ name: String, pointers: [String], count: Int, work: Int, body: [String]) {
        emitOnce(
            name,
            ["static void \(name)(void *context, size_t first, size_t last) {", "  void *const *p = context;"] + body
                + ["}", ""])
        let arguments = pointers.map { "(void *)\($0)" }.joined(separator: ", ")
        emit(
            "  { void *p[] = {\(arguments)}; kk_parallel_range(\(count), \(work), KK_PARALLEL_ELEMENTS, \(name), p); }")
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

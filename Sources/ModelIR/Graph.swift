/// An index into `Graph.values`. Generated code and passes name values by
/// index, never by the model's own strings.
public struct ValueID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var index: Int
    public init(_ index: Int) { self.index = index }
    public static func < (a: ValueID, b: ValueID) -> Bool { a.index < b.index }
    public var description: String { "%\(index)" }
}

/// A tensor flowing through the graph.
public struct Value: Sendable {
    /// The name the model gave it (display and DataInputConfig only).
    public var name: String
    /// nil for values that are not tensors (sequences, maps, optionals).
    public var type: TensorType?

    public init(name: String, type: TensorType?) {
        self.name = name
        self.type = type
    }
}

/// An attribute value, typed as ONNX types them.
public indirect enum AttributeValue: Sendable {
    case float(Float)
    case int(Int)
    case string([UInt8])
    case tensor(Constant)
    case graph(Graph)
    case floats([Float])
    case ints([Int])
    case strings([[UInt8]])
    case tensors([Constant])
    case graphs([Graph])
    /// Sparse tensors and type protos: kept by kind so a reason can name them.
    case unsupported(kind: String)
}

/// A condition a node runs under: the bool scalar `condition` must equal `whenTrue`.
/// Inlined If branches carry one per enclosing If.
public struct NodeGuard: Sendable, Equatable {
    public var condition: ValueID
    public var whenTrue: Bool

    public init(condition: ValueID, whenTrue: Bool) {
        self.condition = condition
        self.whenTrue = whenTrue
    }
}

/// One operator application.
public struct Node: Sendable {
    public var name: String
    public var opType: String
    /// "" for the default ai.onnx domain.
    public var domain: String
    /// nil marks an omitted optional input (ONNX's empty name).
    public var inputs: [ValueID?]
    public var outputs: [ValueID?]
    public var attributes: [String: AttributeValue]
    /// Runs only when every guard holds (nodes of an inlined If branch); empty for most nodes.
    public var guards: [NodeGuard] = []

    public init(
        name: String, opType: String, domain: String = "", inputs: [ValueID?], outputs: [ValueID?],
        attributes: [String: AttributeValue] = [:]
    ) {
        self.name = name
        self.opType = opType
        self.domain = domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// Every value the node reads: its inputs and its guards' conditions (for liveness).
    public var reads: [ValueID] { inputs.compactMap { $0 } + guards.map(\.condition) }

    /// Whether the node is in ONNX's default domain ("" or "ai.onnx").
    public var isDefaultDomain: Bool { domain.isEmpty || domain == "ai.onnx" }

    /// "Conv" or "com.microsoft::QLinearAdd".
    public var qualifiedOpType: String { isDefaultDomain ? opType : "\(domain)::\(opType)" }

    public func int(_ name: String) -> Int? {
        if case .int(let value)? = attributes[name] { return value }
        return nil
    }

    public func ints(_ name: String) -> [Int]? {
        if case .ints(let value)? = attributes[name] { return value }
        return nil
    }

    public func float(_ name: String) -> Float? {
        if case .float(let value)? = attributes[name] { return value }
        return nil
    }

    public func string(_ name: String) -> String? {
        if case .string(let bytes)? = attributes[name] { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }

    public func tensor(_ name: String) -> Constant? {
        if case .tensor(let value)? = attributes[name] { return value }
        return nil
    }
}

/// A dataflow graph in topological order: values, the nodes that compute
/// them, the graph's inputs and outputs, and the constants among its values.
public struct Graph: Sendable {
    public var name: String
    public var values: [Value]
    public var nodes: [Node]
    /// Inputs the caller supplies (initializers listed as inputs excluded).
    public var inputs: [ValueID]
    public var outputs: [ValueID]
    public var initializers: [ValueID: Constant]

    public init(
        name: String = "", values: [Value] = [], nodes: [Node] = [], inputs: [ValueID] = [],
        outputs: [ValueID] = [], initializers: [ValueID: Constant] = [:]
    ) {
        self.name = name
        self.values = values
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
    }

    public subscript(id: ValueID) -> Value {
        get { values[id.index] }
        set { values[id.index] = newValue }
    }

    /// Adds a value and returns its ID.
    public mutating func addValue(_ value: Value) -> ValueID {
        values.append(value)
        return ValueID(values.count - 1)
    }

    /// How many times each op (qualified by domain) occurs, subgraphs included (a Loop's body, not the nodes
    /// a Kiln fusion holds: `kiln::FusedElementwise` counts as itself).
    public var opHistogram: [String: Int] {
        var counts: [String: Int] = [:]
        for node in nodes {
            counts[node.qualifiedOpType, default: 0] += 1
            for attribute in node.attributes.values where node.domain != "kiln" {
                switch attribute {
                case .graph(let graph): counts.merge(graph.opHistogram, uniquingKeysWith: +)
                case .graphs(let graphs):
                    for graph in graphs { counts.merge(graph.opHistogram, uniquingKeysWith: +) }
                default: break
                }
            }
        }
        return counts
    }

    /// Elements and bytes held in initializers (the model's parameters).
    public var parameterTotals: (count: Int, bytes: Int) {
        initializers.values.reduce((0, 0)) { ($0.0 + $1.elementCount, $0.1 + $1.storage.count) }
    }
}

/// A whole model: its graph plus where it came from.
public struct Model: Sendable {
    public var graph: Graph
    public var irVersion: Int
    /// Opset version per domain ("" is ai.onnx).
    public var opsets: [String: Int]
    public var producer: String

    public init(graph: Graph, irVersion: Int, opsets: [String: Int], producer: String = "") {
        self.graph = graph
        self.irVersion = irVersion
        self.opsets = opsets
        self.producer = producer
    }

    /// The ai.onnx opset version.
    public var opset: Int { opsets[""] ?? opsets["ai.onnx"] ?? 1 }
}

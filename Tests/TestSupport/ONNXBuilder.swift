/// A dimension as a test model declares it.
public enum Dim: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral, Sendable {
    case value(Int)
    case symbol(String)

    public init(integerLiteral value: Int) { self = .value(value) }
    public init(stringLiteral value: String) { self = .symbol(value) }
}

/// ONNX element type numbers used in tests.
public enum ElemType {
    public static let float: Int32 = 1
    public static let uint8: Int32 = 2
    public static let int32: Int32 = 6
    public static let int64: Int32 = 7
    public static let string: Int32 = 8
    public static let bool: Int32 = 9
}

/// A tensor for an initializer or attribute.
public struct TensorSpec: Sendable {
    public var name: String
    public var elemType: Int32
    public var dims: [Int]
    public var raw: [UInt8]?
    public var floats: [Float]?
    public var int64s: [Int]?
    /// (location, offset, length) of external data.
    public var external: (location: String, offset: Int?, length: Int?)?

    public init(name: String, elemType: Int32 = ElemType.float, dims: [Int], raw: [UInt8]? = nil) {
        self.name = name
        self.elemType = elemType
        self.dims = dims
        self.raw = raw
    }

    public static func float(_ name: String, _ dims: [Int], _ values: [Float]) -> TensorSpec {
        var spec = TensorSpec(name: name, dims: dims)
        spec.raw = values.withUnsafeBytes { Array($0) }
        return spec
    }

    public static func floatField(_ name: String, _ dims: [Int], _ values: [Float]) -> TensorSpec {
        var spec = TensorSpec(name: name, dims: dims)
        spec.floats = values
        return spec
    }

    public static func int64(_ name: String, _ dims: [Int], _ values: [Int]) -> TensorSpec {
        var spec = TensorSpec(name: name, elemType: ElemType.int64, dims: dims)
        spec.int64s = values
        return spec
    }

    public static func external(_ name: String, _ dims: [Int], location: String, offset: Int? = nil, length: Int? = nil)
        -> TensorSpec
    {
        var spec = TensorSpec(name: name, dims: dims)
        spec.external = (location, offset, length)
        return spec
    }

    func write(_ w: inout ProtoWriter) {
        if !dims.isEmpty { w.packedInts(1, dims) }
        w.int(2, Int(elemType))
        if let floats { w.packedFloats(4, floats) }
        if let int64s { w.packedInts(7, int64s) }
        w.string(8, name)
        if let raw { w.bytes(9, raw) }
        if let external {
            var entries = [("location", external.location)]
            if let offset = external.offset { entries.append(("offset", String(offset))) }
            if let length = external.length { entries.append(("length", String(length))) }
            for (key, value) in entries {
                w.message(13) {
                    $0.string(1, key)
                    $0.string(2, value)
                }
            }
            w.int(14, 1)
        }
    }
}

/// An attribute value.
public enum AttrSpec: Sendable {
    case int(Int)
    case ints([Int])
    case float(Float)
    case string(String)
    case tensor(TensorSpec)
    case graph(GraphSpec)
}

public struct NodeSpec: Sendable {
    public var op: String
    public var inputs: [String]
    public var outputs: [String]
    public var name: String
    public var domain: String
    public var attributes: [(String, AttrSpec)]

    public init(
        _ op: String, _ inputs: [String], _ outputs: [String], name: String = "", domain: String = "",
        _ attributes: [(String, AttrSpec)] = []
    ) {
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
        self.name = name
        self.domain = domain
        self.attributes = attributes
    }

    func write(_ w: inout ProtoWriter) {
        for input in inputs { w.string(1, input) }
        for output in outputs { w.string(2, output) }
        if !name.isEmpty { w.string(3, name) }
        w.string(4, op)
        for (name, value) in attributes {
            w.message(5) { a in
                a.string(1, name)
                switch value {
                case .float(let f):
                    a.float(2, f)
                    a.int(20, 1)
                case .int(let i):
                    a.int(3, i)
                    a.int(20, 2)
                case .string(let s):
                    a.string(4, s)
                    a.int(20, 3)
                case .tensor(let t):
                    a.message(5) { t.write(&$0) }
                    a.int(20, 4)
                case .graph(let g):
                    a.message(6) { g.write(&$0) }
                    a.int(20, 5)
                case .ints(let values):
                    for value in values { a.int(8, value) }
                    a.int(20, 7)
                }
            }
        }
        if !domain.isEmpty { w.string(7, domain) }
    }
}

/// A value info: name, element type and dims (nil dims: no shape at all).
public struct ValueSpec: Sendable {
    public var name: String
    public var elemType: Int32
    public var dims: [Dim]?

    public init(_ name: String, _ elemType: Int32 = ElemType.float, _ dims: [Dim]?) {
        self.name = name
        self.elemType = elemType
        self.dims = dims
    }

    func write(_ w: inout ProtoWriter) {
        w.string(1, name)
        w.message(2) { type in
            type.message(1) { tensor in
                tensor.int(1, Int(elemType))
                if let dims {
                    tensor.message(2) { shape in
                        for dim in dims {
                            shape.message(1) {
                                switch dim {
                                case .value(let v): $0.int(1, v)
                                case .symbol(let s): $0.string(2, s)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

public struct GraphSpec: Sendable {
    public var name = "test"
    public var nodes: [NodeSpec] = []
    public var inputs: [ValueSpec] = []
    public var outputs: [ValueSpec] = []
    public var initializers: [TensorSpec] = []

    public init(
        name: String = "test", nodes: [NodeSpec] = [], inputs: [ValueSpec] = [], outputs: [ValueSpec] = [],
        initializers: [TensorSpec] = []
    ) {
        self.name = name
        self.nodes = nodes
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
    }

    func write(_ w: inout ProtoWriter) {
        for node in nodes { w.message(1) { node.write(&$0) } }
        w.string(2, name)
        for tensor in initializers { w.message(5) { tensor.write(&$0) } }
        for input in inputs { w.message(11) { input.write(&$0) } }
        for output in outputs { w.message(12) { output.write(&$0) } }
    }
}

/// A whole ONNX model, serialized with `bytes`.
public struct ModelSpec: Sendable {
    public var irVersion = 8
    public var opsets: [(String, Int)] = [("", 17)]
    public var graph: GraphSpec

    public init(irVersion: Int = 8, opset: Int = 17, graph: GraphSpec) {
        self.irVersion = irVersion
        self.opsets = [("", opset)]
        self.graph = graph
    }

    public var bytes: [UInt8] {
        var w = ProtoWriter()
        w.int(1, irVersion)
        w.string(2, "kiln-tests")
        w.message(7) { graph.write(&$0) }
        for (domain, version) in opsets {
            w.message(8) {
                $0.string(1, domain)
                $0.int(2, version)
            }
        }
        return w.bytes
    }
}

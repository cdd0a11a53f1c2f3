import Diagnostics
import ModelIR

/// The input shapes a user gives with a compilation job, in every form the
/// API accepts for ONNX and PyTorch-style models: an object of name → shape,
/// a list of shapes in graph-input order, or the Python-style single-quoted
/// spelling of either. Binding it to a model's inputs fixes every symbolic
/// dimension, so that after the check stage every shape is static.
public struct DataInputConfig: Sendable, Equatable {
    public enum Form: Sendable, Equatable {
        case named([NamedShape])
        case ordered([[Int]])
    }

    public struct NamedShape: Sendable, Equatable {
        public var name: String
        public var shape: [Int]

        public init(_ name: String, _ shape: [Int]) {
            self.name = name
            self.shape = shape
        }
    }

    /// Kiln's extension: an input fixed to a value at compile time,
    /// `{"axes": {"value": [1]}}`, for inputs that determine shapes.
    public struct ConstantBinding: Sendable, Equatable {
        public var name: String
        public var values: [Double]
        /// The nesting of the given list, nil for a bare number.
        public var shape: [Int]?
    }

    public var form: Form
    public var constants: [ConstantBinding] = []
    /// Things the user should know about how the text was read.
    public var notes: [String]

    public init(form: Form, constants: [ConstantBinding] = [], notes: [String] = []) {
        self.form = form
        self.constants = constants
        self.notes = notes
    }

    public static func parse(_ text: String) throws -> DataInputConfig {
        var parser = LenientJSONParser(text)
        let value: JSONValue
        do {
            value = try parser.parse()
        } catch let failure as LenientJSONParser.Failure {
            throw KilnError.client(
                .dataInputConfig,
                "\(quoted(text, limit: 80)) is not valid JSON (\(failure.message)); "
                    + "give an object like {\"input\": [1,3,224,224]} or a list of shapes like [[1,3,224,224]]")
        }
        var notes: [String] = []
        if parser.usedSingleQuotes {
            notes.append("DataInputConfig used Python-style single quotes; read as the JSON \(normalizedText(value))")
        }
        switch value {
        case .object(let members):
            guard !members.isEmpty else {
                throw KilnError.client(
                    .dataInputConfig, "the DataInputConfig object is empty; give a shape for each model input")
            }
            var seen: Set<String> = []
            var shapes: [NamedShape] = []
            var constants: [ConstantBinding] = []
            for (name, shape) in members {
                guard seen.insert(name).inserted else {
                    throw KilnError.client(.dataInputConfig, "input \(quoted(name)) is given twice")
                }
                if case .object(let fields) = shape {
                    constants.append(try binding(name, fields))
                } else {
                    shapes.append(NamedShape(name, try dims(shape, for: "input \(quoted(name))")))
                }
            }
            return DataInputConfig(form: .named(shapes), constants: constants, notes: notes)
        case .array(let elements):
            // A single flat shape [1,3,224,224] is read as the shape of the only input.
            if !elements.isEmpty, elements.allSatisfy({ if case .integer = $0 { return true } else { return false } }) {
                return DataInputConfig(form: .ordered([try dims(value, for: "the first input")]), notes: notes)
            }
            guard !elements.isEmpty else {
                throw KilnError.client(
                    .dataInputConfig, "the DataInputConfig list is empty; give a shape for each model input")
            }
            let shapes = try elements.enumerated().map { try dims($1, for: "input #\($0)") }
            return DataInputConfig(form: .ordered(shapes), notes: notes)
        default:
            throw KilnError.client(
                .dataInputConfig,
                "DataInputConfig must be a JSON object like {\"input\": [1,3,224,224]} or a list of shapes, not \(normalizedText(value))"
            )
        }
    }

    /// `{"value": 2.0}` or `{"value": [[1, 2], [3, 4]]}`.
    private static func binding(_ name: String, _ fields: [(String, JSONValue)]) throws -> ConstantBinding {
        guard fields.count == 1, fields[0].0 == "value" else {
            throw KilnError.client(
                .dataInputConfig,
                "input \(quoted(name)) is given an object; to fix its value at compile time write {\"value\": [numbers]}"
            )
        }
        var values: [Double] = []
        func number(_ value: JSONValue) throws -> Double {
            switch value {
            case .integer(let n): return Double(n)
            case .number(let n): return n
            case .bool(let b): return b ? 1 : 0
            default:
                throw KilnError.client(
                    .dataInputConfig, "the value of input \(quoted(name)) holds \(normalizedText(value)); use numbers")
            }
        }
        func flatten(_ value: JSONValue, depth: Int) throws -> [Int] {
            guard case .array(let elements) = value else {
                values.append(try number(value))
                return []
            }
            guard depth < 8 else {
                throw KilnError.client(.dataInputConfig, "the value of input \(quoted(name)) nests too deep")
            }
            var inner: [Int]?
            for element in elements {
                let shape = try flatten(element, depth: depth + 1)
                if let inner, inner != shape {
                    throw KilnError.client(.dataInputConfig, "the value of input \(quoted(name)) is a ragged list")
                }
                inner = shape
            }
            return [elements.count] + (inner ?? [])
        }
        let value = fields[0].1
        let shape = try flatten(value, depth: 0)
        if case .array = value { return ConstantBinding(name: name, values: values, shape: shape) }
        return ConstantBinding(name: name, values: values, shape: nil)
    }

    private static func dims(_ value: JSONValue, for what: String) throws -> [Int] {
        guard case .array(let elements) = value else {
            throw KilnError.client(
                .dataInputConfig,
                "the shape of \(what) must be a list of integers like [1,3,224,224], not \(normalizedText(value))")
        }
        return try elements.map { element in
            guard case .integer(let dim) = element else {
                throw KilnError.client(
                    .dataInputConfig, "the shape of \(what) holds \(normalizedText(element)); dims must be integers")
            }
            guard dim > 0 else {
                throw KilnError.client(
                    .dataInputConfig, "the shape of \(what) has dim \(dim); every dim must be a positive integer")
            }
            return dim
        }
    }

    static func normalizedText(_ value: JSONValue) -> String {
        switch value {
        case .object(let members):
            return "{" + members.map { "\"\($0.0)\": \(normalizedText($0.1))" }.joined(separator: ", ") + "}"
        case .array(let elements): return "[" + elements.map(normalizedText).joined(separator: ",") + "]"
        case .string(let text): return "\"\(text)\""
        case .integer(let value): return String(value)
        case .number(let value): return String(value)
        case .bool(let value): return String(value)
        case .null: return "null"
        }
    }
}

/// A graph input as the model declares it, for binding DataInputConfig.
public struct DeclaredInput: Sendable, Equatable {
    public var name: String
    /// nil when the input is not a tensor (sequence, map, optional).
    public var type: TensorType?

    public init(name: String, type: TensorType?) {
        self.name = name
        self.type = type
    }
}

/// An input with the static shape Kiln compiles for.
public struct ResolvedInput: Sendable, Equatable, Codable {
    public var name: String
    public var dataType: DataType
    public var shape: [Int]

    public init(name: String, dataType: DataType, shape: [Int]) {
        self.name = name
        self.dataType = dataType
        self.shape = shape
    }
}

extension DataInputConfig {
    /// Binds `config` (nil when the user gave none) to the model's inputs.
    /// `constants` are inputs that have an initializer and so need no shape.
    public static func resolve(
        _ config: DataInputConfig?, inputs declared: [DeclaredInput], constants: Set<String>
    ) throws -> [ResolvedInput] {
        let inputs = declared.filter { !constants.contains($0.name) }
        for input in inputs where input.type == nil {
            throw KilnError.client(
                .modelCheck,
                "model input \(quoted(input.name)) is not a tensor (a sequence, map or optional); Kiln compiles tensor inputs only"
            )
        }
        var given: [String: [Int]] = [:]
        switch config?.form {
        case nil:
            break
        case .named(let shapes)?:
            for entry in shapes {
                guard inputs.contains(where: { $0.name == entry.name }) else {
                    if constants.contains(entry.name) {
                        throw KilnError.client(
                            .dataInputConfig,
                            "\(quoted(entry.name)) is a constant of the model (an initializer), not an input; remove it from DataInputConfig"
                        )
                    }
                    throw KilnError.client(
                        .dataInputConfig,
                        "input \(quoted(entry.name)) is not an input of the model; its inputs are \(list(inputs))")
                }
                given[entry.name] = entry.shape
            }
        case .ordered(let shapes)?:
            guard shapes.count == inputs.count else {
                throw KilnError.client(
                    .dataInputConfig,
                    "DataInputConfig lists \(shapes.count) shape(s) but the model has \(inputs.count) input(s): \(list(inputs)); "
                        + "give one shape per input, in this order, or an object keyed by input name")
            }
            for (input, shape) in zip(inputs, shapes) { given[input.name] = shape }
        }

        var symbols: [String: (value: Int, input: String)] = [:]
        var resolved: [ResolvedInput] = []
        for input in inputs {
            let type = input.type!
            guard let shape = given[input.name] else {
                guard let fixed = type.staticShape else {
                    let example = (type.shape ?? []).map { $0.value.map(String.init) ?? "1" }.joined(separator: ",")
                    throw KilnError.client(
                        .dataInputConfig,
                        "no shape given for input \(quoted(input.name)), which the model declares as \(type); "
                            + "add \"\(input.name)\": [\(example)] to DataInputConfig")
                }
                resolved.append(ResolvedInput(name: input.name, dataType: type.dataType, shape: fixed))
                continue
            }
            if let declaredShape = type.shape {
                guard declaredShape.count == shape.count else {
                    throw KilnError.client(
                        .dataInputConfig,
                        "input \(quoted(input.name)) has rank \(declaredShape.count) \(shapeText(declaredShape)) in the model "
                            + "but DataInputConfig gives rank \(shape.count) \(shapeText(shape))")
                }
                for (axis, (dim, value)) in zip(declaredShape, shape).enumerated() {
                    switch dim {
                    case .value(let fixed) where fixed != value:
                        throw KilnError.client(
                            .dataInputConfig,
                            "input \(quoted(input.name)) has dim \(axis) fixed to \(fixed) in the model \(shapeText(declaredShape)) "
                                + "but DataInputConfig gives \(value) \(shapeText(shape))")
                    case .symbol(let name):
                        if let bound = symbols[name], bound.value != value {
                            throw KilnError.client(
                                .dataInputConfig,
                                "dim \(quoted(name)) is \(bound.value) for input \(quoted(bound.input)) but \(value) for input "
                                    + "\(quoted(input.name)); the model says they are the same size")
                        }
                        symbols[name] = (value, input.name)
                    default:
                        break
                    }
                }
            }
            resolved.append(ResolvedInput(name: input.name, dataType: type.dataType, shape: shape))
        }
        return resolved
    }

    private static func list(_ inputs: [DeclaredInput]) -> String {
        inputs.isEmpty
            ? "(none)"
            : inputs.map { "\(quoted($0.name)) \($0.type.map { shapeText($0.shape) } ?? "")" }.joined(separator: ", ")
    }
}

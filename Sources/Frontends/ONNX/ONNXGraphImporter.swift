import CONNX
import Diagnostics
import Glibc
import ModelIR

/// Builds Kiln's IR from the protobuf graph libonnx holds: values, nodes with
/// typed attributes, and constants that borrow the protobuf's (or a mapped
/// external file's) bytes instead of copying them. It also checks what the
/// IR relies on: names are UTF-8, each value is produced once, every input is
/// defined before use (no dangling inputs, no cycles), tensor sizes add up.
struct ONNXGraphImporter {
    let owner: AnyObject
    var handle: ONNXModelHandle { owner as! ONNXModelHandle }
    /// The unpacked archive: external data must resolve inside it.
    let rootDirectory: String
    /// The directory of the .onnx file: external data locations are relative to it.
    let modelDirectory: String
    private var mappedFiles: [String: MappedFile] = [:]

    init(owner: AnyObject, rootDirectory: String, modelDirectory: String) {
        self.owner = owner
        self.rootDirectory = rootDirectory
        self.modelDirectory = modelDirectory
    }

    mutating func importMainGraph() throws -> Graph {
        try importGraph(connx_main_graph(handle.pointer), outerScope: nil)
    }

    /// Reads the types libonnx's shape inference attached to the main graph
    /// (value infos and outputs), by value name.
    func inferredTypes() -> [String: TensorType] {
        let graph = connx_main_graph(handle.pointer)
        var types: [String: TensorType] = [:]
        for index in 0..<connx_graph_value_info_count(graph) {
            let info = connx_graph_value_info(graph, index)!
            if let (name, type) = valueInfo(info), let type { types[name] = type }
        }
        for index in 0..<connx_graph_output_count(graph) {
            let info = connx_graph_output(graph, index)!
            if let (name, type) = valueInfo(info), let type { types[name] = type }
        }
        return types
    }

    private mutating func importGraph(_ pointer: OpaquePointer?, outerScope: Set<String>?) throws -> Graph {
        guard let pointer else { throw KilnError.client(.modelCheck, "the model has no graph") }
        var graph = Graph(name: bytesText(string { connx_graph_name(pointer, $0, $1) }))
        var ids: [String: ValueID] = [:]
        var produced: Set<String> = []
        let isSubgraph = outerScope != nil

        // Initializers first: an input that also has an initializer is a constant.
        var initializerNames: Set<String> = []
        for index in 0..<connx_graph_initializer_count(pointer) {
            let tensor = connx_graph_initializer(pointer, index)!
            let name = try name(string { connx_tensor_name(tensor, $0, $1) }, "an initializer name")
            guard !name.isEmpty else { throw KilnError.client(.modelCheck, "an initializer has no name") }
            guard initializerNames.insert(name).inserted else {
                throw KilnError.client(.modelCheck, "initializer \(quoted(name)) is defined twice")
            }
            let constant = try importTensor(tensor, name: name)
            let id = graph.addValue(Value(name: name, type: TensorType(constant.dataType, static: constant.shape)))
            graph.initializers[id] = constant
            ids[name] = id
            produced.insert(name)
        }
        if connx_graph_sparse_initializer_count(pointer) > 0 {
            throw KilnError.client(
                .unsupportedDataType, "the model has sparse initializers, which Kiln does not support; store them dense"
            )
        }

        for index in 0..<connx_graph_input_count(pointer) {
            let info = connx_graph_input(pointer, index)!
            guard let (name, type) = valueInfo(info) else {
                throw KilnError.client(.modelCheck, "a graph input name is not valid UTF-8")
            }
            if let existing = ids[name] {
                // An initializer listed as an input (IR < 4 style): a constant, not a caller input.
                if graph[existing].type == nil { graph[existing].type = type }
                continue
            }
            guard !name.isEmpty else { throw KilnError.client(.modelCheck, "graph input #\(index) has no name") }
            let id = graph.addValue(Value(name: name, type: type))
            ids[name] = id
            produced.insert(name)
            graph.inputs.append(id)
        }

        for index in 0..<connx_graph_node_count(pointer) {
            let node = connx_graph_node(pointer, index)!
            let opType = try name(string { connx_node_op_type(node, $0, $1) }, "an op type")
            let domain = try name(string { connx_node_domain(node, $0, $1) }, "an op domain")
            let nodeName = bytesText(string { connx_node_name(node, $0, $1) })
            let label = nodeName.isEmpty ? "#\(index) (\(opType))" : "#\(index) \(quoted(nodeName)) (\(opType))"
            var inputs: [ValueID?] = []
            for slot in 0..<connx_node_input_count(node) {
                let inputName = try name(
                    string { connx_node_input(node, slot, $0, $1) }, "an input name of node \(label)")
                if inputName.isEmpty {
                    inputs.append(nil)
                } else if let id = ids[inputName] {
                    inputs.append(id)
                } else if let outerScope, outerScope.contains(inputName) {
                    // A subgraph reads a value of an enclosing graph.
                    let id = graph.addValue(Value(name: inputName, type: nil))
                    ids[inputName] = id
                    inputs.append(id)
                } else {
                    throw KilnError.client(
                        .modelCheck,
                        "input \(quoted(inputName)) of node \(label) is not a graph input, an initializer, or the output of an "
                            + "earlier node (a dangling input, or nodes out of order or in a cycle)")
                }
            }
            var attributes: [String: AttributeValue] = [:]
            let visible = (outerScope ?? []).union(ids.keys)
            for slot in 0..<connx_node_attr_count(node) {
                let attribute = connx_node_attr(node, slot)!
                let attributeName = try name(
                    string { connx_attr_name(attribute, $0, $1) }, "an attribute name of node \(label)")
                guard attributes[attributeName] == nil else {
                    throw KilnError.client(.modelCheck, "node \(label) has attribute \(quoted(attributeName)) twice")
                }
                attributes[attributeName] = try importAttribute(attribute, node: label, scope: visible)
            }
            var outputs: [ValueID?] = []
            for slot in 0..<connx_node_output_count(node) {
                let outputName = try name(
                    string { connx_node_output(node, slot, $0, $1) }, "an output name of node \(label)")
                if outputName.isEmpty {
                    outputs.append(nil)
                    continue
                }
                guard !produced.contains(outputName) else {
                    throw KilnError.client(
                        .modelCheck,
                        "value \(quoted(outputName)) is produced twice (again by node \(label)); ONNX values have one producer"
                    )
                }
                let id = graph.addValue(Value(name: outputName, type: nil))
                ids[outputName] = id
                produced.insert(outputName)
                outputs.append(id)
            }
            graph.nodes.append(
                Node(
                    name: nodeName, opType: opType, domain: domain, inputs: inputs, outputs: outputs,
                    attributes: attributes))
        }

        for index in 0..<connx_graph_output_count(pointer) {
            let info = connx_graph_output(pointer, index)!
            guard let (name, type) = valueInfo(info) else {
                throw KilnError.client(.modelCheck, "a graph output name is not valid UTF-8")
            }
            guard
                let id = ids[name]
                    ?? (isSubgraph && (outerScope?.contains(name) ?? false)
                        ? graph.addValue(Value(name: name, type: nil)) : nil)
            else {
                throw KilnError.client(
                    .modelCheck, "graph output \(quoted(name)) is not produced by any node, input or initializer")
            }
            ids[name] = id
            // The declared output type fills in what the producer has not typed (node outputs, captures).
            if graph[id].type?.shape == nil, let type { graph[id].type = type }
            graph.outputs.append(id)
        }
        for index in 0..<connx_graph_value_info_count(pointer) {
            let info = connx_graph_value_info(pointer, index)!
            if let (name, type) = valueInfo(info), let id = ids[name], graph[id].type == nil { graph[id].type = type }
        }
        return graph
    }

    private mutating func importAttribute(_ attribute: OpaquePointer, node: String, scope: Set<String>) throws
        -> AttributeValue
    {
        if connx_attr_is_reference(attribute) != 0 {
            return .unsupported(kind: "reference to a function attribute")
        }
        switch connx_attr_type(attribute) {
        case 1: return .float(connx_attr_f(attribute))
        case 2: return .int(Int(connx_attr_i(attribute)))
        case 3: return .string(rawBytes(string { connx_attr_s(attribute, $0, $1) }))
        case 4: return .tensor(try importTensor(connx_attr_t(attribute)!, name: "an attribute tensor of node \(node)"))
        case 5: return .graph(try importGraph(connx_attr_g(attribute), outerScope: scope))
        case 6:
            var values: UnsafePointer<Float>?
            let count = connx_attr_floats(attribute, &values)
            return .floats(count == 0 ? [] : Array(UnsafeBufferPointer(start: values, count: count)))
        case 7:
            var values: UnsafePointer<Int64>?
            let count = connx_attr_ints(attribute, &values)
            return .ints(count == 0 ? [] : UnsafeBufferPointer(start: values, count: count).map { Int($0) })
        case 8:
            return .strings(
                (0..<connx_attr_strings_count(attribute)).map { index in
                    rawBytes(string { connx_attr_string(attribute, index, $0, $1) })
                })
        case 9:
            return .tensors(
                try (0..<connx_attr_tensors_count(attribute)).map {
                    try importTensor(connx_attr_tensor(attribute, $0)!, name: "an attribute tensor of node \(node)")
                })
        case 10:
            return .graphs(
                try (0..<connx_attr_graphs_count(attribute)).map {
                    try importGraph(connx_attr_graph(attribute, $0), outerScope: scope)
                })
        case 11, 12: return .unsupported(kind: "sparse tensor")
        case 13, 14: return .unsupported(kind: "type proto")
        default: return .unsupported(kind: "attribute type \(connx_attr_type(attribute))")
        }
    }

    // MARK: tensors

    mutating func importTensor(_ tensor: OpaquePointer, name: String) throws -> Constant {
        let rawType = connx_tensor_data_type(tensor)
        guard let dataType = DataType(rawValue: rawType) else {
            throw KilnError.client(.unsupportedDataType, "tensor \(quoted(name)) has unknown data type \(rawType)")
        }
        var dimsPointer: UnsafePointer<Int64>?
        let rank = connx_tensor_dims(tensor, &dimsPointer)
        let shape = rank == 0 ? [] : UnsafeBufferPointer(start: dimsPointer, count: rank).map { Int($0) }
        guard shape.allSatisfy({ $0 >= 0 }), let count = elementCount(shape) else {
            throw KilnError.client(
                .modelCheck, "tensor \(quoted(name)) declares an invalid or overflowing shape \(shapeText(shape))")
        }
        guard let elementSize = dataType.byteSize else {
            // Strings and 4-bit types: no fixed-width bytes to borrow; later stages reject them by type.
            return Constant(dataType: dataType, shape: shape, storage: TensorStorage([]))
        }
        let (expected, overflow) = count.multipliedReportingOverflow(by: elementSize)
        guard !overflow else {
            throw KilnError.client(.modelCheck, "tensor \(quoted(name)) with shape \(shapeText(shape)) is too large")
        }
        if connx_tensor_is_external(tensor) != 0 {
            return Constant(
                dataType: dataType, shape: shape, storage: try externalData(tensor, name: name, expected: expected))
        }
        var data: UnsafeRawPointer?
        var fieldCount = 0
        let field = connx_tensor_data(tensor, &data, &fieldCount)
        let mismatch = {
            KilnError.client(
                .modelCheck,
                "tensor \(quoted(name)) declares shape \(shapeText(shape)) (\(count) \(dataType.name) elements) "
                    + "but holds \(fieldCount) \(field == 1 ? "bytes" : "values")")
        }
        switch field {
        case 0:
            guard count == 0 else { throw mismatch() }
            return Constant(dataType: dataType, shape: shape, storage: TensorStorage([]))
        case 1:
            guard fieldCount == expected else { throw mismatch() }
            return Constant(
                dataType: dataType, shape: shape,
                storage: TensorStorage(borrowing: UnsafeRawBufferPointer(start: data, count: fieldCount), owner: owner))
        default:
            guard fieldCount == count || (dataType == .complex64 && fieldCount == count * 2) else { throw mismatch() }
            let bytes = try Self.narrow(field: field, data: data, count: fieldCount, to: dataType, name: name)
            return Constant(dataType: dataType, shape: shape, storage: bytes)
        }
    }

    /// Converts a typed repeated field (int32_data holds int8…float16 widened,
    /// uint64_data holds uint32) into the element type's own little-endian bytes.
    static func narrow(field: Int32, data: UnsafeRawPointer?, count: Int, to type: DataType, name: String) throws
        -> TensorStorage
    {
        guard let data else { return TensorStorage([]) }
        func convert<Source, Target>(_: Source.Type, _ transform: (Source) -> Target) -> TensorStorage {
            let source = UnsafeBufferPointer(start: data.assumingMemoryBound(to: Source.self), count: count)
            let values = source.map(transform)
            return values.withUnsafeBytes { TensorStorage(copying: $0) }
        }
        switch (field, type) {
        case (2, .float32), (2, .complex64): return convert(Float.self) { $0 }
        case (3, .int32): return convert(Int32.self) { $0 }
        case (3, .int16): return convert(Int32.self) { Int16(truncatingIfNeeded: $0) }
        case (3, .int8): return convert(Int32.self) { Int8(truncatingIfNeeded: $0) }
        case (3, .uint16), (3, .float16), (3, .bfloat16): return convert(Int32.self) { UInt16(truncatingIfNeeded: $0) }
        case (3, .uint8), (3, .bool), (3, .float8e4m3fn), (3, .float8e4m3fnuz), (3, .float8e5m2), (3, .float8e5m2fnuz):
            return convert(Int32.self) { UInt8(truncatingIfNeeded: $0) }
        case (5, .int64): return convert(Int64.self) { $0 }
        case (6, .float64): return convert(Double.self) { $0 }
        case (7, .uint64): return convert(UInt64.self) { $0 }
        case (7, .uint32): return convert(UInt64.self) { UInt32(truncatingIfNeeded: $0) }
        default:
            throw KilnError.client(
                .modelCheck, "tensor \(quoted(name)) of type \(type.name) stores its data in the wrong field")
        }
    }

    private mutating func externalData(_ tensor: OpaquePointer, name: String, expected: Int) throws -> TensorStorage {
        var entries: [String: String] = [:]
        for index in 0..<connx_tensor_external_count(tensor) {
            var key: UnsafePointer<CChar>?
            var keyLength = 0
            var value: UnsafePointer<CChar>?
            var valueLength = 0
            connx_tensor_external_entry(tensor, index, &key, &keyLength, &value, &valueLength)
            entries[bytesText(key, keyLength)] = bytesText(value, valueLength)
        }
        guard let location = entries["location"], !location.isEmpty else {
            throw KilnError.client(.modelCheck, "tensor \(quoted(name)) has external data without a location")
        }
        guard !location.hasPrefix("/") else {
            throw KilnError.client(
                .inputConfiguration,
                "tensor \(quoted(name)) refers to external data at absolute path \(quoted(location)); it must be a file inside the archive"
            )
        }
        let offset = Int(entries["offset"] ?? "0")
        let length = entries["length"].map { Int($0) }
        guard let offset, offset >= 0, length.map({ $0 != nil && $0! >= 0 }) ?? true else {
            throw KilnError.client(.modelCheck, "tensor \(quoted(name)) has a malformed external data offset or length")
        }
        let file = try mapInsideArchive(location, tensor: name)
        let available = file.length - offset
        let size = (length ?? nil) ?? available
        guard offset <= file.length, size <= available else {
            throw KilnError.client(
                .modelCheck,
                "tensor \(quoted(name)) reads \(size) bytes at offset \(offset) of \(quoted(location)), which has only \(file.length)"
            )
        }
        guard size == expected else {
            throw KilnError.client(
                .modelCheck,
                "tensor \(quoted(name)) needs \(expected) bytes but its external data in \(quoted(location)) has \(size)"
            )
        }
        return TensorStorage(
            borrowing: UnsafeRawBufferPointer(start: file.base.map { $0 + offset }, count: size), owner: file)
    }

    private mutating func mapInsideArchive(_ location: String, tensor: String) throws -> MappedFile {
        if let mapped = mappedFiles[location] { return mapped }
        let outside = KilnError.client(
            .inputConfiguration,
            "tensor \(quoted(tensor)) refers to external data \(quoted(location)), which is not a file inside the model archive"
        )
        guard let resolved = realPath(modelDirectory + "/" + location), let root = realPath(rootDirectory),
            resolved.hasPrefix(root + "/")
        else { throw outside }
        let mapped = try MappedFile(path: resolved, displayName: location)
        mappedFiles[location] = mapped
        return mapped
    }

    // MARK: helpers

    private func valueInfo(_ info: OpaquePointer) -> (String, TensorType?)? {
        let text = string { connx_value_info_name(info, $0, $1) }
        guard let name = strictText(text.0, text.1) else { return nil }
        guard connx_value_info_is_tensor(info) != 0 else { return (name, nil) }
        guard let dataType = DataType(rawValue: connx_value_info_elem_type(info)) else { return (name, nil) }
        let rank = connx_value_info_rank(info)
        guard rank >= 0 else { return (name, TensorType(dataType, nil)) }
        var dims: [Dimension] = []
        for axis in 0..<Int(rank) {
            var value: Int64 = 0
            var symbol: UnsafePointer<CChar>?
            var length = 0
            switch connx_value_info_dim(info, axis, &value, &symbol, &length) {
            case 1: dims.append(value >= 0 ? .value(Int(value)) : .unknown)
            case 2: dims.append(.symbol(bytesText(symbol, length)))
            default: dims.append(.unknown)
            }
        }
        return (name, TensorType(dataType, dims))
    }

    private func name(_ text: (UnsafePointer<CChar>?, Int), _ what: String) throws -> String {
        guard let value = strictText(text.0, text.1) else {
            throw KilnError.client(.modelCheck, "\(what) is not valid UTF-8")
        }
        return value
    }

    private func string(_ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafeMutablePointer<Int>) -> Void) -> (
        UnsafePointer<CChar>?, Int
    ) {
        var pointer: UnsafePointer<CChar>?
        var length = 0
        body(&pointer, &length)
        return (pointer, length)
    }
}

private func bytesText(_ text: (UnsafePointer<CChar>?, Int)) -> String { bytesText(text.0, text.1) }

private func rawBytes(_ text: (UnsafePointer<CChar>?, Int)) -> [UInt8] { rawBytes(text.0, text.1) }

func realPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

/// A read-only memory map of an external-data file, unmapped when the last
/// constant borrowing from it is gone.
final class MappedFile: @unchecked Sendable {
    // Immutable after init.
    let base: UnsafeRawPointer?
    let length: Int

    init(path: String, displayName: String) throws {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw KilnError.client(.inputConfiguration, "cannot open external data file \(quoted(displayName))")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw KilnError.client(.inputConfiguration, "external data \(quoted(displayName)) is not a regular file")
        }
        length = Int(info.st_size)
        if length == 0 {
            base = nil
            return
        }
        guard let mapping = mmap(nil, length, PROT_READ, MAP_PRIVATE, descriptor, 0), mapping != MAP_FAILED else {
            throw KilnError.server(.internal, "cannot map external data file \(quoted(displayName))")
        }
        base = UnsafeRawPointer(mapping)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), length) }
    }
}

import CONNX
import Diagnostics
import Foundation
import ModelIR

/// libonnx's schema registries and version converter are not documented as
/// thread-safe: every call into it that checks, converts, infers or parses
/// goes through this lock (they are fast next to clang; jobs run in parallel).
let libonnxLock = NSLock()

/// Owns a model parsed by libonnx (through the CONNX shim) and keeps it alive
/// while the IR borrows its initializer bytes.
final class ONNXModelHandle: @unchecked Sendable {
    // The C++ model is only mutated by the check stage, which holds the only
    // reference at that time; afterwards it is read-only.
    let pointer: OpaquePointer

    static var libraryIRVersion: Int { Int(connx_library_ir_version()) }
    static var libraryOpset: Int { Int(connx_library_opset()) }
    /// The highest ai.onnx.ml opset that libonnx 1.12 knows.
    static let libraryMLOpset = 3

    init(parsingFile path: String, displayName: String) throws {
        var error = [CChar](repeating: 0, count: 1024)
        guard let model = libonnxLock.withLock({ connx_parse_file(path, &error, error.count) }) else {
            throw KilnError.client(
                .inputConfiguration,
                "\(displayName) is not a valid ONNX model: \(Self.message(error)); re-export it or check that the file is not damaged"
            )
        }
        pointer = model
    }

    deinit { connx_free(pointer) }

    var irVersion: Int { Int(connx_ir_version(pointer)) }

    var opsets: [String: Int] {
        var result: [String: Int] = [:]
        for index in 0..<connx_opset_count(pointer) {
            var domain: UnsafePointer<CChar>?
            var length = 0
            var version: Int64 = 0
            connx_opset(pointer, index, &domain, &length, &version)
            let name = bytesText(domain, length)
            result[name == "ai.onnx" ? "" : name] = Int(version)
        }
        return result
    }

    var producer: String {
        var name: UnsafePointer<CChar>?
        var nameLength = 0
        var version: UnsafePointer<CChar>?
        var versionLength = 0
        connx_producer(pointer, &name, &nameLength, &version, &versionLength)
        let producer = bytesText(name, nameLength)
        let producerVersion = bytesText(version, versionLength)
        return producerVersion.isEmpty ? producer : "\(producer) \(producerVersion)"
    }

    func check(modelDirectory: String) throws {
        try call("the ONNX checker rejects the model") { connx_check(pointer, modelDirectory, $0, $1) }
    }

    func convertVersion(to opset: Int) throws {
        try call("the ONNX version converter failed") { connx_convert_version(pointer, Int64(opset), $0, $1) }
    }

    func setInputShape(index: Int, _ dims: [Int]) throws {
        let values = dims.map(Int64.init)
        try call("cannot set the input shape") { connx_set_input_shape(pointer, index, values, values.count, $0, $1) }
    }

    func bindInputConstant(index: Int, _ constant: Constant) throws {
        let dims = constant.shape.map(Int64.init)
        try call("cannot bind the input to a constant") {
            connx_bind_input_constant(
                pointer, index, constant.dataType.rawValue, dims, dims.count, constant.storage.bytes.baseAddress,
                constant.storage.count, $0, $1)
        }
    }

    func inferShapes() throws {
        try call("ONNX shape inference fails") { connx_infer_shapes(pointer, $0, $1) }
    }

    private func call(_ what: String, _ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
        var error = [CChar](repeating: 0, count: 1024)
        let status = libonnxLock.withLock { error.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) } }
        guard status == 0 else { throw KilnError.client(.modelCheck, "\(what): \(Self.message(error))") }
    }

    static func message(_ buffer: [CChar]) -> String {
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Model-supplied bytes as text for display (invalid UTF-8 repaired).
func bytesText(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> String {
    guard let pointer, length > 0 else { return "" }
    return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
        String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
    }
}

/// Model-supplied bytes that must be valid UTF-8 (names that wire the graph).
func strictText(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> String? {
    guard let pointer, length > 0 else { return "" }
    return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
        String(validating: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
    }
}

func rawBytes(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> [UInt8] {
    guard let pointer, length > 0 else { return [] }
    return pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
        Array(UnsafeBufferPointer(start: $0, count: length))
    }
}

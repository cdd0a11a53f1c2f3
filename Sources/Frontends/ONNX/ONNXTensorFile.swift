import CONNX
import Diagnostics
import Foundation
import ModelIR

/// A serialized TensorProto on its own, as the ONNX backend test data stores
/// inputs and expected outputs (`test_data_set_0/input_0.pb`).
public enum ONNXTensorFile {
    final class Handle: @unchecked Sendable {
        // Immutable after parsing; the constant borrows its bytes.
        let pointer: OpaquePointer
        init(_ pointer: OpaquePointer) { self.pointer = pointer }
        deinit { connx_free_tensor_file(pointer) }
    }

    public static func read(path: String) throws -> Constant {
        var error = [CChar](repeating: 0, count: 512)
        guard let file = libonnxLock.withLock({ connx_parse_tensor_file(path, &error, error.count) }) else {
            throw KilnError.client(.inputConfiguration, "\(path): \(ONNXModelHandle.message(error))")
        }
        let handle = Handle(file)
        var importer = ONNXGraphImporter(owner: handle, rootDirectory: "/nonexistent", modelDirectory: "/nonexistent")
        return try importer.importTensor(connx_tensor_file_tensor(file)!, name: path)
    }
}

import CONNX

/// Small read-only views of the main graph that the frontend needs outside the importer.
struct CONNXGraph {
    let handle: ONNXModelHandle

    init(_ handle: ONNXModelHandle) { self.handle = handle }

    /// Names of the protobuf's graph inputs, in order (initializers included for IR < 4).
    var inputNames: [String] {
        let graph = connx_main_graph(handle.pointer)
        return (0..<connx_graph_input_count(graph)).map { index in
            var pointer: UnsafePointer<CChar>?
            var length = 0
            connx_value_info_name(connx_graph_input(graph, index), &pointer, &length)
            return bytesText(pointer, length)
        }
    }
}

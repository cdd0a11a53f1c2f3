import Archive
import Foundation

/// A fresh temporary directory for one test, removed when the value is released.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init() throws {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/kiln-test-\(UUID().uuidString.lowercased())"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name` (parents created) and returns the full path.
    @discardableResult
    public func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let full = "\(path)/\(name)"
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(bytes).write(to: URL(fileURLWithPath: full))
        return full
    }

    /// Writes a model.tar.gz holding `files` and returns its path.
    @discardableResult
    public func tarGz(_ name: String, _ files: [String: [UInt8]]) throws -> String {
        let full = "\(path)/\(name)"
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try TarGzWriter.write(files.mapValues { .bytes($0) }, to: full)
        return full
    }

    /// Every path under the directory, relative, sorted.
    public func listing() -> [String] {
        (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? []).sorted()
    }
}

/// The repository's root, found from this file's location.
public let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// A simple valid model: y = Relu(x + b), x float [N,4].
public func reluModel(opset: Int = 17, irVersion: Int = 8, inputDims: [Dim] = ["N", 4]) -> ModelSpec {
    ModelSpec(
        irVersion: irVersion, opset: opset,
        graph: GraphSpec(
            nodes: [
                NodeSpec("Add", ["x", "b"], ["sum"], name: "add"), NodeSpec("Relu", ["sum"], ["y"], name: "relu"),
            ],
            inputs: [ValueSpec("x", ElemType.float, inputDims)],
            outputs: [ValueSpec("y", ElemType.float, inputDims)],
            initializers: [.float("b", [4], [1, -2, 3, -4])]))
}

import Diagnostics
import Glibc

/// Finds the model file in an unpacked archive by the original service's
/// rules: matched by suffix anywhere in the tree, files whose name starts
/// with "." (macOS `._model.onnx`) ignored, and exactly one allowed.
public enum ModelLocator {
    /// The path (relative to `root`) of the one model file for `framework`.
    public static func locate(in files: [String], framework: Framework, archiveName: String) throws -> String {
        guard let suffix = framework.modelFileSuffix else {
            try framework.requireFrontend()
            throw KilnError.client(.inputConfiguration, "no model file rule for \(framework.rawValue)")
        }
        let candidates = files.filter { path in
            let base = path.split(separator: "/").last.map(String.init) ?? path
            return !base.hasPrefix(".") && base.lowercased().hasSuffix(suffix)
        }.sorted()
        switch candidates.count {
        case 1:
            return candidates[0]
        case 0:
            let shown = files.sorted().prefix(10).map { quoted($0) }.joined(separator: ", ")
            let found =
                files.isEmpty
                ? "it is empty" : "it holds \(files.count) file(s): \(shown)\(files.count > 10 ? ", ..." : "")"
            throw KilnError.client(
                .inputConfiguration,
                "no *\(suffix) file in \(archiveName) (\(found)); a \(framework.rawValue) model archive must contain exactly one *\(suffix) file"
            )
        default:
            let shown = candidates.prefix(10).map { quoted($0) }.joined(separator: ", ")
            throw KilnError.client(
                .inputConfiguration,
                "\(archiveName) holds \(candidates.count) *\(suffix) files (\(shown)); a \(framework.rawValue) model archive must contain exactly one"
            )
        }
    }
}

import Archive
import Diagnostics
import Foundation

/// The pack stage: `model.so` (or `model.dll`), `weights.bin`, `kiln.h` and `manifest.json`
/// into `<name>.tar.gz`, deterministically (sorted, fixed metadata), so the
/// same inputs give a byte-identical artifact.
public enum ArtifactPacker {
    /// `model-ml_c5.tar.gz` for `model.tar.gz` compiled for `ml_c5`.
    public static func artifactName(inputBaseName: String, target: String) -> String {
        var base = inputBaseName
        for suffix in [".tar.gz", ".tgz", ".tar", ".onnx"] where base.lowercased().hasSuffix(suffix) {
            base = String(base.dropLast(suffix.count))
            break
        }
        if base.isEmpty { base = "model" }
        return "\(base)-\(target).tar.gz"
    }

    /// Packs the four files in `directory` into `archivePath`.
    public static func pack(directory: String, manifest: ArtifactManifest, to archivePath: String) throws {
        try manifest.encoded().write(to: URL(fileURLWithPath: "\(directory)/manifest.json"))
        var entries: [String: TarGzWriter.Content] = [:]
        for name in manifest.files {
            let path = "\(directory)/\(name)"
            guard FileManager.default.fileExists(atPath: path) else {
                throw KilnError.server(.pack, "the artifact is missing \(name)")
            }
            entries[name] = .file(path: path)
        }
        // Huffman-only: ResNet-50's 100 MB of weights pack in about a third of level 6's time, no larger.
        try TarGzWriter.write(entries, to: archivePath, effort: .huffmanOnly)
    }
}

import Archive
import Diagnostics
import Foundation

/// Opens an artifact given as its `.tar.gz` (unpacked safely into a temporary
/// directory, removed when released) or as an already unpacked directory.
public final class OpenedArtifact: @unchecked Sendable {
    /// The artifact, loaded into this process or (built for another CPU) run under qemu-user.
    public let loaded: any ArtifactExecutor
    private let temporary: String?

    public init(path: String, threads: Int = 1) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw KilnError.client(.inputConfiguration, "\(path) does not exist")
        }
        if isDirectory.boolValue {
            temporary = nil
            loaded = try Self.open(directory: path, threads: threads)
            return
        }
        let directory = FileManager.default.temporaryDirectory.path + "/kiln-artifact-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            _ = try Unpacker.unpack(archive: path, format: try ArchiveFormat.detect(path: path), into: directory)
            loaded = try Self.open(directory: directory, threads: threads)
        } catch let error as ArchiveError {
            try? FileManager.default.removeItem(atPath: directory)
            throw KilnError.client(.inputConfiguration, "\(path) is not a Kiln artifact: \(error)")
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        temporary = directory
    }

    static func open(directory: String, threads: Int) throws -> any ArtifactExecutor {
        let manifest = try LoadedArtifact.manifest(in: directory)
        if LoadedArtifact.runsNatively(triple: manifest.triple) {
            return try LoadedArtifact(directory: directory, manifest: manifest, threads: threads)
        }
        return try EmulatedArtifact(directory: directory, manifest: manifest, threads: threads)
    }

    deinit {
        if let temporary { try? FileManager.default.removeItem(atPath: temporary) }
    }
}

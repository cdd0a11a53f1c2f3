import Glibc

/// What a model file is, judged by its first bytes rather than its name.
public enum ArchiveFormat: Equatable, Sendable {
    case tarGzip
    case tar
    /// Neither: a bare model file, say `model.onnx`.
    case plain

    /// Looks at the first 512 bytes of the file at `path`.
    public static func detect(path: String) throws -> ArchiveFormat {
        let source = try FileSource(path: path)
        var head = [UInt8](repeating: 0, count: 512)
        var filled = 0
        while filled < head.count {
            let count = try head.withUnsafeMutableBytes {
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...]))
            }
            if count == 0 { break }
            filled += count
        }
        return detect(head: Array(head[0..<filled]))
    }

    public static func detect(head: [UInt8]) -> ArchiveFormat {
        if head.count >= 2 && head[0] == 0x1F && head[1] == 0x8B { return .tarGzip }
        if head.count >= 262 && head[257..<262].elementsEqual("ustar".utf8) { return .tar }
        return .plain
    }
}

/// Unpacks a `.tar.gz` or `.tar` into a directory, safely and within limits.
public enum Unpacker {
    public static func unpack(
        archive path: String, format: ArchiveFormat, into root: String, limits: ExtractionLimits = .standard
    ) throws -> SafeExtractor.Summary {
        let file = try FileSource(path: path)
        let source: ByteSource
        switch format {
        case .tarGzip:
            // Headers count too: allow a block and a pax header per entry on top.
            let headerAllowance = Int64(limits.maximumEntries) * 2048
            source = try GzipReader(file, maximumOutput: limits.maximumTotalBytes + headerAllowance)
        case .tar:
            source = file
        case .plain:
            throw ArchiveError.corruptTar("not a tar or tar.gz archive")
        }
        return try SafeExtractor(limits: limits).extract(from: source, into: root)
    }
}

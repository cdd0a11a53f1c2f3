/// Writes a `.tar.gz` deterministically: entries sorted by path, fixed
/// metadata, fixed gzip header. The artifact packer and the tests use it.
public enum TarGzWriter {
    /// What goes into the archive at one path.
    public enum Content: Sendable {
        case bytes([UInt8])
        case file(path: String)
        case directory
    }

    public static func write(
        _ entries: [String: Content], to path: String, effort: GzipWriter.Effort = .standard
    ) throws {
        let file = try FileSink(path: path)
        let gzip = try GzipWriter(file, effort: effort)
        let tar = TarWriter(gzip)
        for name in entries.keys.sorted() {
            switch entries[name]! {
            case .bytes(let bytes):
                try tar.addFile(name, bytes: bytes)
            case .directory:
                try tar.addDirectory(name)
            case .file(let source):
                let input = try FileSource(path: source)
                let size = try fileSize(source)
                try tar.addFile(name, size: size) { sink in
                    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 18, alignment: 16)
                    defer { buffer.deallocate() }
                    while true {
                        let count = try input.read(into: buffer)
                        if count == 0 { break }
                        try sink.write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
                    }
                }
            }
        }
        try tar.finish()
        try gzip.finish()
    }
}

import Glibc

/// A pull stream of bytes: a file, a gzip decoder over a file, a buffer.
/// Archive readers pull from it so a large model never sits in memory whole.
public protocol ByteSource: AnyObject {
    /// Reads at most `buffer.count` bytes into `buffer`; returns 0 only at the end.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// A pushed stream of bytes: a file, or a gzip encoder in front of one.
public protocol ByteSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

extension ByteSink {
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }
}

/// Reads a file through its descriptor. Closes it when released.
public final class FileSource: ByteSource {
    let descriptor: Int32

    public init(path: String) throws {
        descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ArchiveError.io("cannot open \(path): \(errnoText())") }
    }

    deinit { close(descriptor) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if errno == EINTR { continue }
            throw ArchiveError.io("read failed: \(errnoText())")
        }
    }
}

/// Reads from bytes held in memory (tests, small payloads).
public final class MemorySource: ByteSource {
    let bytes: [UInt8]
    var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = min(buffer.count, bytes.count - offset)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + offset, byteCount: count)
        }
        offset += count
        return count
    }
}

/// Writes to a file created (or truncated) at `path`.
public final class FileSink: ByteSink {
    let descriptor: Int32

    public init(path: String, mode: mode_t = 0o644) throws {
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw ArchiveError.io("cannot create \(path): \(errnoText())") }
    }

    /// Takes ownership of an open descriptor.
    init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try writeAll(descriptor, bytes)
    }
}

/// Collects written bytes in memory (tests, small payloads).
public final class MemorySink: ByteSink {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        self.bytes.append(contentsOf: bytes)
    }
}

func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) throws {
    var offset = 0
    while offset < bytes.count {
        let count = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        if count < 0 {
            if errno == EINTR { continue }
            throw ArchiveError.io("write failed: \(errnoText())")
        }
        offset += count
    }
}

func errnoText() -> String {
    String(cString: strerror(errno))
}

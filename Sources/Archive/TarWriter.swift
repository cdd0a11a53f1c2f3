/// Writes a POSIX tar stream that is the same byte for byte for the same
/// entries: fixed mtime, owner and modes; names that do not fit ustar go in a
/// pax header. Callers pass entries in the order they want (TarGzWriter sorts).
public final class TarWriter {
    private let sink: ByteSink
    private static let zeros = [UInt8](repeating: 0, count: 1024)

    public init(_ sink: ByteSink) { self.sink = sink }

    public func addDirectory(_ path: String) throws {
        let name = path.hasSuffix("/") ? path : path + "/"
        try writeHeader(name: name, size: 0, flag: UInt8(ascii: "5"), mode: 0o755)
    }

    /// Adds a file whose `size` bytes are then produced by `body` writing to the sink given.
    public func addFile(_ path: String, size: Int64, mode: UInt32 = 0o644, contents body: (ByteSink) throws -> Void)
        throws
    {
        try writeHeader(name: path, size: size, flag: UInt8(ascii: "0"), mode: mode)
        let counter = CountingSink(sink)
        try body(counter)
        guard counter.count == size else {
            throw ArchiveError.io("\(path): wrote \(counter.count) bytes, declared \(size)")
        }
        let padding = Int(TarReader.padding(size))
        if padding > 0 {
            try Self.zeros.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<padding])) }
        }
    }

    public func addFile(_ path: String, bytes: [UInt8], mode: UInt32 = 0o644) throws {
        try addFile(path, size: Int64(bytes.count), mode: mode) { try $0.write(bytes) }
    }

    /// Writes the two zero blocks that end an archive.
    public func finish() throws {
        try sink.write(Self.zeros)
    }

    private func writeHeader(name: String, size: Int64, flag: UInt8, mode: UInt32) throws {
        let utf8 = Array(name.utf8)
        var ustarName = utf8
        var prefix: [UInt8] = []
        var pax: [(String, String)] = []
        if utf8.count > 100 {
            if let split = Self.ustarSplit(utf8) {
                (prefix, ustarName) = split
            } else {
                pax.append(("path", name))
                ustarName = Array(utf8.suffix(99))
            }
        }
        // 11 octal digits hold sizes below 8 GiB; larger ones go in pax.
        let octalLimit: Int64 = 0o77777777777
        if size > octalLimit { pax.append(("size", String(size))) }
        if !pax.isEmpty {
            var body: [UInt8] = []
            for (key, value) in pax { body += Self.paxRecord(key, value) }
            let header = Self.header(
                name: Array("PaxHeader/".utf8 + ustarName.suffix(90)), prefix: [], size: Int64(body.count),
                flag: UInt8(ascii: "x"), mode: 0o644)
            try sink.write(header)
            try sink.write(body + [UInt8](repeating: 0, count: Int(TarReader.padding(Int64(body.count)))))
        }
        try sink.write(
            Self.header(name: ustarName, prefix: prefix, size: min(size, octalLimit), flag: flag, mode: mode))
    }

    /// Splits a long name at a slash into a ustar prefix (≤155) and name (≤100).
    static func ustarSplit(_ name: [UInt8]) -> (prefix: [UInt8], name: [UInt8])? {
        for index in name.indices where name[index] == UInt8(ascii: "/") {
            let prefix = Array(name[..<index])
            let rest = Array(name[(index + 1)...])
            if prefix.count <= 155 && rest.count <= 100 && !rest.isEmpty { return (prefix, rest) }
        }
        return nil
    }

    static func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let body = " \(key)=\(value)\n"
        // The length field counts its own digits: grow it until it is consistent.
        var length = body.utf8.count + 1
        while String(length).count + body.utf8.count != length { length = String(length).count + body.utf8.count }
        return Array("\(length)\(body)".utf8)
    }

    static func header(name: [UInt8], prefix: [UInt8], size: Int64, flag: UInt8, mode: UInt32) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: [UInt8], at offset: Int) {
            for (index, byte) in bytes.enumerated() { block[offset + index] = byte }
        }
        func octal(_ value: Int64, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(name, at: 0)
        put(octal(Int64(mode), width: 8), at: 100)
        put(octal(0, width: 8), at: 108)  // uid
        put(octal(0, width: 8), at: 116)  // gid
        put(octal(size, width: 12), at: 124)
        put(octal(0, width: 12), at: 136)  // mtime
        put(Array("        ".utf8), at: 148)  // checksum placeholder
        block[156] = flag
        put(Array("ustar".utf8) + [0] + Array("00".utf8), at: 257)
        put(octal(0, width: 8), at: 329)  // devmajor
        put(octal(0, width: 8), at: 337)  // devminor
        put(prefix, at: 345)
        let checksum = block.reduce(0) { $0 + Int64($1) }
        put(
            Array(
                (String(repeating: "0", count: 6 - String(checksum, radix: 8).count) + String(checksum, radix: 8)).utf8)
                + [0, UInt8(ascii: " ")], at: 148)
        return block
    }
}

/// Counts the bytes passing through to another sink.
final class CountingSink: ByteSink {
    let inner: ByteSink
    var count: Int64 = 0

    init(_ inner: ByteSink) { self.inner = inner }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        count += Int64(bytes.count)
        try inner.write(bytes)
    }
}

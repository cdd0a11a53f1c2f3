import Glibc

/// Reads a tar stream entry by entry: POSIX ustar headers, pax extended
/// headers (`path`, `linkpath`, `size`), GNU long names and long link names,
/// and both octal and base-256 numbers. Every header's checksum is verified
/// and every size is bounded before anything is allocated for it.
public final class TarReader {
    static let blockSize = 512
    /// Extended headers (pax, GNU long names) larger than this are refused.
    public static let maximumExtendedHeaderBytes: Int64 = 1 << 20

    private let source: ByteSource
    private var buffer: [UInt8]
    private var bufferStart = 0
    private var bufferEnd = 0
    private var sourceEnded = false
    /// Data bytes (plus padding) of the current entry not yet consumed.
    private var pendingData: Int64 = 0
    private var pendingPadding: Int64 = 0
    private var globalPax: [String: String] = [:]
    private var reachedEnd = false

    public init(_ source: ByteSource, bufferSize: Int = 1 << 18) {
        self.source = source
        buffer = [UInt8](repeating: 0, count: bufferSize)
    }

    /// The next entry, or nil at the end of the archive. Unread data of the
    /// previous entry is skipped.
    public func next() throws -> TarEntry? {
        guard !reachedEnd else { return nil }
        try skipData()
        var pax: [String: String] = [:]
        var longName: String?
        var longLink: String?
        while true {
            guard let header = try readBlock(allowEnd: true) else {
                reachedEnd = true
                return nil
            }
            if header.allSatisfy({ $0 == 0 }) {
                reachedEnd = true
                return nil
            }
            try verifyChecksum(header)
            let flag = header[156]
            let size = try number(header, 124, 12, field: "size")
            guard size >= 0 else { throw ArchiveError.corruptTar("negative size in a header") }
            switch flag {
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                let records = try parsePax(try readExtended(size, what: "pax header"))
                if flag == UInt8(ascii: "x") {
                    pax.merge(records) { $1 }
                } else {
                    globalPax.merge(records) { $1 }
                }
                continue
            case UInt8(ascii: "L"):
                longName = try cString(try readExtended(size, what: "GNU long name"))
                continue
            case UInt8(ascii: "K"):
                longLink = try cString(try readExtended(size, what: "GNU long link name"))
                continue
            default:
                break
            }
            let attributes = globalPax.merging(pax) { $1 }
            var path = try longName ?? attributes["path"] ?? headerPath(header)
            let linkTarget = try longLink ?? attributes["linkpath"] ?? string(header, 157, 100)
            var entrySize = size
            if let paxSize = attributes["size"] {
                guard let value = Int64(paxSize), value >= 0 else {
                    throw ArchiveError.corruptTar("pax size \(paxSize) is not a number")
                }
                entrySize = value
            }
            let mode = try number(header, 100, 8, field: "mode")
            let kind: TarEntry.Kind
            switch flag {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"):
                kind = .file
                // Old tars mark directories only by a trailing slash.
                if flag == 0 && path.hasSuffix("/") { return try directoryEntry(&path, mode) }
            case UInt8(ascii: "5"): return try directoryEntry(&path, mode)
            case UInt8(ascii: "1"): kind = .hardlink(target: linkTarget)
            case UInt8(ascii: "2"): kind = .symlink(target: linkTarget)
            case UInt8(ascii: "3"): kind = .characterDevice
            case UInt8(ascii: "4"): kind = .blockDevice
            case UInt8(ascii: "6"): kind = .fifo
            default: kind = .unsupported(flag: flag)
            }
            // Links and devices carry no data even if a size is set; files do.
            let dataSize: Int64
            switch kind {
            case .file, .unsupported: dataSize = entrySize
            default: dataSize = 0
            }
            pendingData = dataSize
            pendingPadding = Self.padding(dataSize)
            return TarEntry(path: path, kind: kind, size: dataSize, mode: UInt32(truncatingIfNeeded: mode))
        }
    }

    private func directoryEntry(_ path: inout String, _ mode: Int64) throws -> TarEntry {
        pendingData = 0
        pendingPadding = 0
        return TarEntry(path: path, kind: .directory, size: 0, mode: UInt32(truncatingIfNeeded: mode))
    }

    /// Passes the current entry's data to `body` in chunks, in order.
    public func readData(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        while pendingData > 0 {
            if bufferStart == bufferEnd { try fill(minimum: 1, what: "file data") }
            let count = Int(min(Int64(bufferEnd - bufferStart), pendingData))
            try buffer.withUnsafeBytes { bytes in
                try body(UnsafeRawBufferPointer(rebasing: bytes[bufferStart..<bufferStart + count]))
            }
            bufferStart += count
            pendingData -= Int64(count)
        }
        try discard(&pendingPadding)
    }

    /// The current entry's data as an array (for small files).
    public func readAll() throws -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(Int(pendingData))
        try readData { result.append(contentsOf: $0) }
        return result
    }

    private func skipData() throws {
        try discard(&pendingData)
        try discard(&pendingPadding)
    }

    private func discard(_ count: inout Int64) throws {
        while count > 0 {
            if bufferStart == bufferEnd { try fill(minimum: 1, what: "file data") }
            let step = Int(min(Int64(bufferEnd - bufferStart), count))
            bufferStart += step
            count -= Int64(step)
        }
    }

    static func padding(_ size: Int64) -> Int64 {
        let remainder = size % Int64(blockSize)
        return remainder == 0 ? 0 : Int64(blockSize) - remainder
    }

    private func readExtended(_ size: Int64, what: String) throws -> [UInt8] {
        guard size <= Self.maximumExtendedHeaderBytes else {
            throw ArchiveError.limitExceeded(
                "a \(what) claims \(size) bytes; more than \(byteCountText(Self.maximumExtendedHeaderBytes)) is refused"
            )
        }
        pendingData = size
        pendingPadding = Self.padding(size)
        return try readAll()
    }

    /// One 512-byte block, or nil at a clean end of input when `allowEnd`.
    private func readBlock(allowEnd: Bool) throws -> [UInt8]? {
        if bufferEnd - bufferStart < Self.blockSize {
            let available = try fill(minimum: Self.blockSize, what: "a tar header", allowShort: allowEnd)
            if available == 0 && allowEnd { return nil }
            if available < Self.blockSize {
                throw ArchiveError.truncated("the tar stream ends inside a header")
            }
        }
        let block = Array(buffer[bufferStart..<bufferStart + Self.blockSize])
        bufferStart += Self.blockSize
        return block
    }

    /// Ensures at least `minimum` bytes are buffered; returns how many are.
    @discardableResult
    private func fill(minimum: Int, what: String, allowShort: Bool = false) throws -> Int {
        if bufferStart > 0 {
            let remaining = bufferEnd - bufferStart
            buffer.withUnsafeMutableBytes { bytes in
                bytes.baseAddress!.copyMemory(from: bytes.baseAddress! + bufferStart, byteCount: remaining)
            }
            bufferStart = 0
            bufferEnd = remaining
        }
        while bufferEnd < minimum && !sourceEnded {
            let count = try buffer.withUnsafeMutableBytes { bytes in
                try source.read(into: UnsafeMutableRawBufferPointer(rebasing: bytes[bufferEnd...]))
            }
            if count == 0 { sourceEnded = true }
            bufferEnd += count
        }
        if bufferEnd < minimum && !allowShort {
            throw ArchiveError.truncated("the tar stream ends inside \(what)")
        }
        return bufferEnd
    }

    private func verifyChecksum(_ header: [UInt8]) throws {
        let stored = try number(header, 148, 8, field: "checksum")
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (index, byte) in header.enumerated() {
            let value = (148..<156).contains(index) ? UInt8(ascii: " ") : byte
            unsigned += Int64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        guard stored == unsigned || stored == signed else {
            throw ArchiveError.corruptTar("header checksum mismatch (not a tar archive, or a damaged one)")
        }
    }

    private func headerPath(_ header: [UInt8]) throws -> String {
        let name = try string(header, 0, 100)
        let isUstar = header[257..<262].elementsEqual("ustar".utf8)
        let prefix = isUstar ? try string(header, 345, 155) : ""
        return prefix.isEmpty ? name : prefix + "/" + name
    }

    private func string(_ header: [UInt8], _ offset: Int, _ length: Int) throws -> String {
        let field = header[offset..<offset + length]
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return try utf8(Array(field[offset..<end]))
    }

    private func cString(_ bytes: [UInt8]) throws -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return try utf8(Array(bytes[..<end]))
    }

    private func utf8(_ bytes: [UInt8]) throws -> String {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ArchiveError.corruptTar("a name is not valid UTF-8")
        }
        return text
    }

    /// An octal number (NUL/space terminated) or GNU base-256 (high bit set).
    private func number(_ header: [UInt8], _ offset: Int, _ length: Int, field: String) throws -> Int64 {
        let bytes = header[offset..<offset + length]
        if let first = bytes.first, first & 0x80 != 0 {
            // Base-256: big-endian two's complement with the marker bit.
            guard first == 0x80 || first == 0xFF else {
                throw ArchiveError.corruptTar("bad base-256 \(field) field")
            }
            var value: Int64 = first == 0xFF ? -1 : 0
            for byte in bytes.dropFirst() {
                guard value >> 55 == 0 || value >> 55 == -1 else {
                    throw ArchiveError.corruptTar("\(field) field overflows")
                }
                value = (value << 8) | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var seenDigit = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard value < (Int64.max >> 3) else { throw ArchiveError.corruptTar("\(field) field overflows") }
                value = value * 8 + Int64(byte - UInt8(ascii: "0"))
                seenDigit = true
            case UInt8(ascii: " ") where !seenDigit:
                continue
            case 0, UInt8(ascii: " "):
                return value
            default:
                throw ArchiveError.corruptTar("the \(field) field is not an octal number")
            }
        }
        return value
    }

    /// pax records: "<length> <key>=<value>\n", the length counting the whole record.
    private func parsePax(_ bytes: [UInt8]) throws -> [String: String] {
        var records: [String: String] = [:]
        var offset = 0
        while offset < bytes.count {
            if bytes[offset] == 0 { break }
            guard let space = bytes[offset...].firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: bytes[offset..<space], as: UTF8.self)),
                length > space - offset + 1, offset + length <= bytes.count,
                bytes[offset + length - 1] == UInt8(ascii: "\n")
            else { throw ArchiveError.corruptTar("malformed pax extended header record") }
            let record = bytes[(space + 1)..<(offset + length - 1)]
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")) else {
                throw ArchiveError.corruptTar("pax record without '='")
            }
            let key = try utf8(Array(record[record.startIndex..<equals]))
            records[key] = try utf8(Array(record[(equals + 1)...]))
            offset += length
        }
        return records
    }
}

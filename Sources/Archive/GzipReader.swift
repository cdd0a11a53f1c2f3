import CZlib
import Glibc

/// Decompresses a gzip stream as it is read, through zlib: every member of a
/// multi-member file in turn, each member's CRC-32 and length checked, a
/// stream cut short reported as truncated, and a cap on the total output so
/// a gzip bomb stops early instead of filling the disk.
public final class GzipReader: ByteSource {
    private let input: ByteSource
    private let stream: UnsafeMutablePointer<z_stream>
    private let inputBuffer: UnsafeMutableRawBufferPointer
    private var inputEnded = false
    private var finished = false
    private var membersRead = 0
    /// Bytes of decompressed output produced so far.
    public private(set) var totalOut: Int64 = 0
    /// Reading past this many decompressed bytes fails with `limitExceeded`.
    public let maximumOutput: Int64

    public init(_ input: ByteSource, maximumOutput: Int64 = .max, bufferSize: Int = 1 << 18) throws {
        self.input = input
        self.maximumOutput = maximumOutput
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        inputBuffer = .allocate(byteCount: bufferSize, alignment: 16)
        // 16 + MAX_WBITS: expect a gzip header and trailer, and check them.
        let status = inflateInit2_(stream, 16 + MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            inputBuffer.deallocate()
            throw ArchiveError.io("zlib could not start inflating (status \(status))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        inputBuffer.deallocate()
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard !finished, buffer.count > 0 else { return 0 }
        stream.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = UInt32(clamping: buffer.count)
        let capacity = Int(stream.pointee.avail_out)
        while stream.pointee.avail_out > 0 {
            if stream.pointee.avail_in == 0 && !inputEnded { try refill() }
            let status = inflate(stream, Z_NO_FLUSH)
            switch status {
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                // No progress possible: zlib needs input we do not have.
                if stream.pointee.avail_in == 0 && inputEnded {
                    throw ArchiveError.truncated("the gzip stream ends in the middle of member \(membersRead + 1)")
                }
                if stream.pointee.avail_in == 0 { continue }
                throw ArchiveError.corruptGzip("zlib made no progress")
            case Z_STREAM_END:
                membersRead += 1
                if try !startNextMember() {
                    finished = true
                    return try produced(capacity)
                }
            case Z_DATA_ERROR:
                throw ArchiveError.corruptGzip(zlibMessage(default: "invalid deflate data"))
            case Z_MEM_ERROR:
                throw ArchiveError.io("zlib ran out of memory")
            default:
                throw ArchiveError.corruptGzip(zlibMessage(default: "zlib status \(status)"))
            }
        }
        return try produced(capacity)
    }

    private func produced(_ capacity: Int) throws -> Int {
        let count = capacity - Int(stream.pointee.avail_out)
        totalOut += Int64(count)
        if totalOut > maximumOutput {
            throw ArchiveError.limitExceeded(
                "the archive decompresses to more than \(byteCountText(maximumOutput)), the configured limit")
        }
        return count
    }

    /// After a member ends: another member follows (gzip magic), or only
    /// zero padding, or nothing. Anything else is trailing garbage.
    private func startNextMember() throws -> Bool {
        while true {
            if stream.pointee.avail_in == 0 {
                if inputEnded { return false }
                try refill()
                continue
            }
            let next = stream.pointee.next_in!
            if next[0] == 0x1F {
                guard inflateReset(stream) == Z_OK else { throw ArchiveError.io("zlib could not reset") }
                return true
            }
            // Zero padding (tape blocking) after the last member is allowed.
            for index in 0..<Int(stream.pointee.avail_in) where next[index] != 0 {
                throw ArchiveError.corruptGzip("unexpected data after gzip member \(membersRead)")
            }
            stream.pointee.avail_in = 0
        }
    }

    private func refill() throws {
        let count = try input.read(into: inputBuffer)
        if count == 0 {
            inputEnded = true
            if membersRead == 0 && totalOut == 0 && stream.pointee.total_in == 0 {
                throw ArchiveError.truncated("the file is empty")
            }
        }
        stream.pointee.next_in = inputBuffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_in = UInt32(count)
    }

    private func zlibMessage(default fallback: String) -> String {
        guard let message = stream.pointee.msg else { return fallback }
        let text = String(cString: message)
        switch text {
        case "incorrect data check": return "CRC-32 mismatch in member \(membersRead + 1) (the data is damaged)"
        case "incorrect length check": return "length mismatch in member \(membersRead + 1) (the data is damaged)"
        case "incorrect header check": return "not a gzip stream (bad header)"
        default: return text
        }
    }
}

/// "8 GiB", "512 MiB", "100 bytes": limits in messages people read.
public func byteCountText(_ bytes: Int64) -> String {
    let units: [(Int64, String)] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
    for (size, unit) in units where bytes >= size {
        let value = Double(bytes) / Double(size)
        return value == value.rounded() ? "\(Int64(value)) \(unit)" : "\((value * 10).rounded() / 10) \(unit)"
    }
    return "\(bytes) bytes"
}

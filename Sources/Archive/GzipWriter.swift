import CZlib

/// Compresses what is written to it into one gzip member, through zlib.
/// The header carries no name and a zero mtime, so equal input gives equal bytes.
public final class GzipWriter: ByteSink {
    private let output: ByteSink
    private let stream: UnsafeMutablePointer<z_stream>
    private let outputBuffer: UnsafeMutableRawBufferPointer
    private var closed = false

    /// How hard zlib works: `.standard` is its level 6; `.huffmanOnly` (level 1, no string matching) codes
    /// each byte by its frequency only — on float weights it compresses as well as level 6 (exponent
    /// bytes are what shrinks; repeats are rare) about three times faster.
    public enum Effort: Sendable {
        case standard, huffmanOnly
    }

    public init(_ output: ByteSink, effort: Effort = .standard, bufferSize: Int = 1 << 18) throws {
        self.output = output
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        outputBuffer = .allocate(byteCount: bufferSize, alignment: 16)
        let status = deflateInit2_(
            stream, effort == .standard ? 6 : 1, Z_DEFLATED, 16 + MAX_WBITS, 8,
            effort == .standard ? Z_DEFAULT_STRATEGY : Z_HUFFMAN_ONLY, zlibVersion(),
            Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            stream.deallocate()
            outputBuffer.deallocate()
            throw ArchiveError.io("zlib could not start deflating (status \(status))")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
        outputBuffer.deallocate()
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count > 0 else { return }
        precondition(!closed, "write after finish")
        stream.pointee.next_in = UnsafeMutablePointer(
            mutating: bytes.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = UInt32(bytes.count)
        try pump(flush: Z_NO_FLUSH)
    }

    /// Writes the rest of the compressed data and the gzip trailer.
    public func finish() throws {
        guard !closed else { return }
        closed = true
        stream.pointee.avail_in = 0
        try pump(flush: Z_FINISH)
    }

    private func pump(flush: Int32) throws {
        repeat {
            stream.pointee.next_out = outputBuffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = UInt32(outputBuffer.count)
            let status = deflate(stream, flush)
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw ArchiveError.io("zlib deflate failed (status \(status))")
            }
            let count = outputBuffer.count - Int(stream.pointee.avail_out)
            if count > 0 { try output.write(UnsafeRawBufferPointer(rebasing: outputBuffer[0..<count])) }
            if flush == Z_FINISH && status == Z_STREAM_END { return }
        } while stream.pointee.avail_out == 0 || (flush == Z_FINISH)
    }
}

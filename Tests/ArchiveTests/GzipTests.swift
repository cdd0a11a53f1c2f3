import Testing

@testable import Archive

@Suite("gzip through zlib")
struct GzipTests {
    static func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        let sink = MemorySink()
        let gzip = try GzipWriter(sink)
        try gzip.write(bytes)
        try gzip.finish()
        return sink.bytes
    }

    static func decompress(_ bytes: [UInt8], limit: Int64 = .max) throws -> [UInt8] {
        let reader = try GzipReader(MemorySource(bytes), maximumOutput: limit, bufferSize: 4096)
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 10_000)
        while true {
            let count = try chunk.withUnsafeMutableBytes { try reader.read(into: $0) }
            if count == 0 { return output }
            output += chunk[0..<count]
        }
    }

    static let sample: [UInt8] = (0..<300_000).map { UInt8(truncatingIfNeeded: ($0 * 7919) >> 3) }

    @Test("round-trips data through compress and decompress")
    func roundTrip() throws {
        #expect(try Self.decompress(Self.compress(Self.sample)) == Self.sample)
        #expect(try Self.decompress(Self.compress([])) == [])
    }

    @Test("writes identical bytes for identical input")
    func deterministic() throws {
        #expect(try Self.compress(Self.sample) == Self.compress(Self.sample))
    }

    @Test("reads every member of a multi-member file")
    func multiMember() throws {
        let joined = try Self.compress(Array("hello ".utf8)) + Self.compress(Array("world".utf8))
        #expect(try Self.decompress(joined) == Array("hello world".utf8))
    }

    @Test("accepts zero padding after the last member, refuses other trailing data")
    func trailingData() throws {
        let member = try Self.compress(Array("data".utf8))
        #expect(try Self.decompress(member + [0, 0, 0, 0]) == Array("data".utf8))
        #expect(throws: ArchiveError.corruptGzip("unexpected data after gzip member 1")) {
            try Self.decompress(member + [0x42, 0x42])
        }
    }

    @Test("detects a stream cut short at any point", arguments: [1, 10, 100, 1000, 5000])
    func truncated(cut: Int) throws {
        let whole = try Self.compress(Self.sample)
        let error = #expect(throws: ArchiveError.self) { try Self.decompress(Array(whole.dropLast(cut))) }
        guard case .truncated? = error else {
            Issue.record("expected truncated, got \(String(describing: error))")
            return
        }
    }

    @Test("detects a CRC-32 mismatch in the trailer")
    func badCRC() throws {
        var bytes = try Self.compress(Self.sample)
        bytes[bytes.count - 8] ^= 0xFF
        #expect(throws: ArchiveError.corruptGzip("CRC-32 mismatch in member 1 (the data is damaged)")) {
            try Self.decompress(bytes)
        }
    }

    @Test("detects a length (ISIZE) mismatch in the trailer")
    func badLength() throws {
        var bytes = try Self.compress(Self.sample)
        bytes[bytes.count - 1] ^= 0x01
        #expect(throws: ArchiveError.corruptGzip("length mismatch in member 1 (the data is damaged)")) {
            try Self.decompress(bytes)
        }
    }

    @Test("rejects damaged deflate data and a bad header")
    func corruptBody() throws {
        var bytes = try Self.compress(Self.sample)
        for index in 20..<60 { bytes[index] = 0xFF }
        #expect(throws: ArchiveError.self) { try Self.decompress(bytes) }
        var header = try Self.compress(Self.sample)
        header[2] = 7  // compression method other than deflate
        #expect(throws: ArchiveError.self) { try Self.decompress(header) }
    }

    @Test("stops a gzip bomb at the output limit instead of inflating it all")
    func bomb() throws {
        let zeros = [UInt8](repeating: 0, count: 8 << 20)
        let bomb = try Self.compress(zeros)
        #expect(bomb.count < 20_000)
        let error = #expect(throws: ArchiveError.self) { try Self.decompress(bomb, limit: 1 << 20) }
        guard case .limitExceeded(let message)? = error else {
            Issue.record("expected limitExceeded, got \(String(describing: error))")
            return
        }
        #expect(message.contains("1 MiB"))
    }

    @Test("reports an empty file as truncated")
    func empty() throws {
        #expect(throws: ArchiveError.truncated("the file is empty")) { try Self.decompress([]) }
    }
}

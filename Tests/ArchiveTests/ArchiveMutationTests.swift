import Foundation
import TestSupport
import Testing

@testable import Archive

@Suite("damaged archives")
struct ArchiveMutationTests {
    @Test("every damaged tar or tar.gz extracts cleanly or fails with an ArchiveError, inside the work dir")
    func mutations() throws {
        let sink = MemorySink()
        let writer = TarWriter(sink)
        try writer.addDirectory("model")
        try writer.addFile("model/model.onnx", bytes: (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try writer.addFile(String(repeating: "long/", count: 40) + "weights.bin", bytes: [1, 2, 3])
        try writer.addFile("README", bytes: Array("sample".utf8))
        try writer.finish()
        let tar = sink.bytes
        let gzipSink = MemorySink()
        let gzip = try GzipWriter(gzipSink)
        try gzip.write(tar)
        try gzip.finish()
        let count = Int(ProcessInfo.processInfo.environment["KILN_MUTATIONS"] ?? "") ?? 300
        var random = SeededGenerator(state: 7)
        var failures = 0
        for iteration in 0..<count {
            var bytes = iteration % 2 == 0 ? tar : gzipSink.bytes
            for _ in 0..<Int.random(in: 1...3, using: &random) where !bytes.isEmpty {
                let position = Int.random(in: 0..<bytes.count, using: &random)
                if Bool.random(using: &random) {
                    bytes[position] = UInt8.random(in: 0...255, using: &random)
                } else {
                    bytes = Array(bytes[..<position])
                }
            }
            let directory = try TemporaryDirectory()
            try FileManager.default.createDirectory(
                atPath: directory.path + "/root", withIntermediateDirectories: false)
            do {
                let source: ByteSource =
                    iteration % 2 == 0
                    ? MemorySource(bytes) : try GzipReader(MemorySource(bytes), maximumOutput: 1 << 20)
                _ = try SafeExtractor(limits: ExtractionLimits(maximumTotalBytes: 1 << 20, maximumEntries: 100))
                    .extract(from: source, into: directory.path + "/root")
            } catch is ArchiveError {
                failures += 1
            }
            #expect(directory.listing().allSatisfy { $0 == "root" || $0.hasPrefix("root/") })
        }
        #expect(failures > 0)
    }
}

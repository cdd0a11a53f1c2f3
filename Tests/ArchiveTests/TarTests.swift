import Foundation
import TestSupport
import Testing

@testable import Archive

/// Builds a raw tar header for tests that need malformed or unusual entries.
func rawHeader(
    name: String, size: Int = 0, flag: Character = "0", link: String = "", sizeField: String? = nil,
    breakChecksum: Bool = false
) -> [UInt8] {
    var block = TarWriter.header(
        name: Array(name.utf8.prefix(100)), prefix: [], size: Int64(size),
        flag: UInt8(ascii: flag.unicodeScalars.first!),
        mode: 0o644)
    for (index, byte) in link.utf8.prefix(100).enumerated() { block[157 + index] = byte }
    if let sizeField {
        for index in 124..<136 { block[index] = 0 }
        for (index, byte) in sizeField.utf8.enumerated() { block[124 + index] = byte }
    }
    // Recompute the checksum after edits.
    for index in 148..<156 { block[index] = UInt8(ascii: " ") }
    var sum = block.reduce(0) { $0 + Int($1) }
    if breakChecksum { sum += 1 }
    let digits = String(sum, radix: 8)
    let field = Array((String(repeating: "0", count: 6 - digits.count) + digits).utf8) + [0, UInt8(ascii: " ")]
    for (index, byte) in field.enumerated() { block[148 + index] = byte }
    return block
}

func padded(_ data: [UInt8]) -> [UInt8] {
    data + [UInt8](repeating: 0, count: Int(TarReader.padding(Int64(data.count))))
}

func entries(_ bytes: [UInt8]) throws -> [(TarEntry, [UInt8])] {
    let reader = TarReader(MemorySource(bytes))
    var result: [(TarEntry, [UInt8])] = []
    while let entry = try reader.next() { result.append((entry, try reader.readAll())) }
    return result
}

@Suite("tar reading and writing")
struct TarTests {
    @Test("round-trips files, directories and long names (ustar prefix and pax)")
    func roundTrip() throws {
        let sink = MemorySink()
        let writer = TarWriter(sink)
        let medium = String(repeating: "d", count: 120) + "/" + String(repeating: "f", count: 90) + ".onnx"
        let long = String(repeating: "x", count: 300) + ".bin"
        try writer.addDirectory("dir")
        try writer.addFile("dir/a.txt", bytes: Array("alpha".utf8))
        try writer.addFile(medium, bytes: Array(repeating: 7, count: 1000))
        try writer.addFile(long, bytes: [])
        try writer.finish()
        let read = try entries(sink.bytes)
        #expect(read.map(\.0.path) == ["dir/", "dir/a.txt", medium, long])
        #expect(read[0].0.kind == .directory)
        #expect(read[1].1 == Array("alpha".utf8))
        #expect(read[2].1 == Array(repeating: 7, count: 1000))
        #expect(read[3].0.size == 0)
    }

    @Test("writes byte-identical .tar.gz archives for identical inputs, sorted by path")
    func deterministicArchives() throws {
        let directory = try TemporaryDirectory()
        let files: [String: TarGzWriter.Content] = [
            "b.txt": .bytes([2]), "a.txt": .bytes([1]), "c/d.bin": .bytes([3, 4]),
        ]
        try TarGzWriter.write(files, to: directory.path + "/one.tar.gz")
        try TarGzWriter.write(files, to: directory.path + "/two.tar.gz")
        let one = try Data(contentsOf: URL(fileURLWithPath: directory.path + "/one.tar.gz"))
        let two = try Data(contentsOf: URL(fileURLWithPath: directory.path + "/two.tar.gz"))
        #expect(one == two)
        let reader = TarReader(try GzipReader(MemorySource(Array(one))))
        var names: [String] = []
        while let entry = try reader.next() { names.append(entry.path) }
        #expect(names == ["a.txt", "b.txt", "c/d.bin"])
    }

    @Test("reads GNU long names and long link names")
    func gnuLongNames() throws {
        let name = String(repeating: "n", count: 150) + "/model.onnx"
        let nameData = Array(name.utf8) + [0]
        let linkData = Array((String(repeating: "t", count: 130)).utf8) + [0]
        var bytes = rawHeader(name: "././@LongLink", size: nameData.count, flag: "L") + padded(nameData)
        bytes += rawHeader(name: "short", size: 3) + padded([1, 2, 3])
        bytes += rawHeader(name: "././@LongLink", size: linkData.count, flag: "K") + padded(linkData)
        bytes += rawHeader(name: "link", flag: "2", link: "ignored")
        bytes += [UInt8](repeating: 0, count: 1024)
        let read = try entries(bytes)
        #expect(read[0].0.path == name)
        #expect(read[0].1 == [1, 2, 3])
        #expect(read[1].0.kind == .symlink(target: String(repeating: "t", count: 130)))
    }

    @Test("reads pax path, linkpath and size records")
    func paxHeaders() throws {
        let path = String(repeating: "p", count: 200)
        let records = TarWriter.paxRecord("path", path) + TarWriter.paxRecord("size", "5")
        var bytes = rawHeader(name: "PaxHeader/x", size: records.count, flag: "x") + padded(records)
        bytes += rawHeader(name: "x", size: 0) + padded([9, 8, 7, 6, 5])
        bytes += [UInt8](repeating: 0, count: 1024)
        let read = try entries(bytes)
        #expect(read[0].0.path == path)
        #expect(read[0].1 == [9, 8, 7, 6, 5])
    }

    @Test("reads archives made by the system tar in gnu, pax and ustar formats", arguments: ["gnu", "pax", "ustar"])
    func systemTar(format: String) throws {
        let directory = try TemporaryDirectory()
        let longDirectory = String(repeating: "l", count: 60)
        try directory.write("src/\(longDirectory)/\(longDirectory)/model.onnx", [1, 2, 3, 4])
        try directory.write("src/readme.txt", Array("hi".utf8))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/tar")
        process.arguments = [
            "--format=\(format)", "-czf", directory.path + "/m.tar.gz", "-C", directory.path + "/src", ".",
        ]
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        try FileManager.default.createDirectory(atPath: directory.path + "/out", withIntermediateDirectories: false)
        let summary = try Unpacker.unpack(
            archive: directory.path + "/m.tar.gz", format: .tarGzip, into: directory.path + "/out")
        #expect(summary.files.sorted() == ["\(longDirectory)/\(longDirectory)/model.onnx", "readme.txt"])
        let data = try Data(
            contentsOf: URL(fileURLWithPath: directory.path + "/out/\(longDirectory)/\(longDirectory)/model.onnx"))
        #expect(Array(data) == [1, 2, 3, 4])
    }

    @Test("writes archives the system tar can list")
    func systemTarReadsOurs() throws {
        let directory = try TemporaryDirectory()
        let long = String(repeating: "z", count: 280)
        try TarGzWriter.write(["short.txt": .bytes([1]), long: .bytes([2, 3])], to: directory.path + "/ours.tar.gz")
        let process = Process()
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: "/bin/tar")
        process.arguments = ["-tzf", directory.path + "/ours.tar.gz"]
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(output.split(separator: "\n").map(String.init) == ["short.txt", long])
    }

    @Test("rejects a header with a bad checksum")
    func badChecksum() throws {
        let bytes = rawHeader(name: "a", breakChecksum: true) + [UInt8](repeating: 0, count: 1024)
        #expect(throws: ArchiveError.corruptTar("header checksum mismatch (not a tar archive, or a damaged one)")) {
            try entries(bytes)
        }
    }

    @Test("rejects a size field that is not a number")
    func badSizeField() throws {
        let bytes = rawHeader(name: "a", sizeField: "12x4") + [UInt8](repeating: 0, count: 1024)
        #expect(throws: ArchiveError.corruptTar("the size field is not an octal number")) { try entries(bytes) }
    }

    @Test("detects a size field that promises more data than the archive holds")
    func lyingSize() throws {
        let bytes = rawHeader(name: "a", size: 5000) + padded([1, 2, 3])
        let error = #expect(throws: ArchiveError.self) { try entries(bytes) }
        guard case .truncated? = error else {
            Issue.record("expected truncated, got \(String(describing: error))")
            return
        }
    }

    @Test("refuses an extended header that claims more than 1 MiB")
    func hugeExtendedHeader() throws {
        let bytes = rawHeader(name: "././@LongLink", size: 50 << 20, flag: "L")
        let error = #expect(throws: ArchiveError.self) { try entries(bytes) }
        guard case .limitExceeded? = error else {
            Issue.record("expected limitExceeded, got \(String(describing: error))")
            return
        }
    }
}

import Foundation
import TestSupport
import Testing

@testable import Archive

/// Extracts `tar` into `<tmp>/root` and reports the error, plus everything
/// that exists beside `root` afterwards (which must be nothing).
func extract(_ tar: [UInt8], limits: ExtractionLimits = .standard) throws -> (
    error: ArchiveError?, outside: [String], directory: TemporaryDirectory, summary: SafeExtractor.Summary?
) {
    let directory = try TemporaryDirectory()
    try FileManager.default.createDirectory(atPath: directory.path + "/root", withIntermediateDirectories: false)
    var error: ArchiveError?
    var summary: SafeExtractor.Summary?
    do {
        summary = try SafeExtractor(limits: limits).extract(from: MemorySource(tar), into: directory.path + "/root")
    } catch let caught as ArchiveError {
        error = caught
    }
    let outside = directory.listing().filter { $0 != "root" && !$0.hasPrefix("root/") }
    return (error, outside, directory, summary)
}

let end = [UInt8](repeating: 0, count: 1024)

func file(_ name: String, _ data: [UInt8] = [1]) -> [UInt8] { rawHeader(name: name, size: data.count) + padded(data) }

@Suite("safe extraction into a work dir")
struct SafeExtractorTests {
    @Test("extracts files, directories and nested paths, ignoring './'")
    func extractsOrdinaryArchive() throws {
        let tar =
            rawHeader(name: "./", flag: "5") + rawHeader(name: "./m/", flag: "5") + file("./m/model.onnx", [1, 2])
            + file("top.txt") + end
        let result = try extract(tar)
        #expect(result.error == nil)
        #expect(result.summary?.files == ["m/model.onnx", "top.txt"])
        #expect(result.directory.listing() == ["root", "root/m", "root/m/model.onnx", "root/top.txt"])
    }

    static let hostile: [(String, [UInt8], String)] = [
        ("absolute path", file("/tmp/evil"), "absolute paths are not allowed"),
        ("parent component", file("../evil"), "'..' components are not allowed"),
        ("parent component inside", file("a/../../evil"), "'..' components are not allowed"),
        ("absolute symlink", rawHeader(name: "link", flag: "2", link: "/etc/passwd"), "points outside the work dir"),
        ("relative symlink out", rawHeader(name: "a/link", flag: "2", link: "../../x"), "points outside the work dir"),
        (
            "symlink escaping through another symlink",
            rawHeader(name: "x/", flag: "5") + rawHeader(name: "x/b", flag: "2", link: "..")
                + rawHeader(name: "a", flag: "2", link: "x/b/.."), "points outside the work dir"
        ),
        ("hard link out", rawHeader(name: "h", flag: "1", link: "../../etc/passwd"), "points outside the work dir"),
        ("hard link to nothing", rawHeader(name: "h", flag: "1", link: "missing"), "not a file extracted before it"),
        ("character device", rawHeader(name: "dev", flag: "3"), "device or FIFO"),
        ("block device", rawHeader(name: "dev", flag: "4"), "device or FIFO"),
        ("FIFO", rawHeader(name: "fifo", flag: "6"), "device or FIFO"),
        ("duplicate file", file("a") + file("a"), "appears twice"),
        ("file under a file", file("a") + file("a/b"), "is not a directory"),
        ("sparse file", rawHeader(name: "s", flag: "S"), "not supported"),
    ]

    @Test("refuses hostile entries and writes nothing outside the work dir", arguments: hostile.indices)
    func refusesHostileEntries(index: Int) throws {
        let (label, entries, reason) = Self.hostile[index]
        let result = try extract(entries + end)
        let error = try #require(result.error, "\(label) was extracted")
        #expect(error.description.contains(reason), "\(label): \(error)")
        #expect(result.outside.isEmpty, "\(label) wrote \(result.outside)")
        if case .unsafeEntry = error {} else { Issue.record("\(label): expected unsafeEntry, got \(error)") }
    }

    @Test("a symlink that stays inside is created, after every file")
    func symlinkInside() throws {
        let tar =
            rawHeader(name: "weights/", flag: "5") + file("weights/w.bin", [5])
            + rawHeader(name: "w.bin", flag: "2", link: "weights/w.bin") + end
        let result = try extract(tar)
        #expect(result.error == nil)
        let target = try FileManager.default.destinationOfSymbolicLink(atPath: result.directory.path + "/root/w.bin")
        #expect(target == "weights/w.bin")
    }

    @Test("a file entry never writes through a symlink from the same archive")
    func noWriteThroughSymlink() throws {
        // The link is deferred, so 'l/evil' needs 'l' as a directory and gets one inside the root.
        let tar = rawHeader(name: "l", flag: "2", link: ".") + file("l/evil") + end
        let result = try extract(tar)
        #expect(result.outside.isEmpty)
        #expect(result.error != nil)
    }

    @Test("stops at the entry-count limit")
    func entryLimit() throws {
        var tar: [UInt8] = []
        for index in 0..<20 { tar += file("f\(index)") }
        let result = try extract(tar + end, limits: ExtractionLimits(maximumEntries: 10))
        #expect(result.error == .limitExceeded("the archive has more than 10 entries, the configured limit"))
    }

    @Test("fails fast on a size over the byte limit before reading any data")
    func byteLimit() throws {
        // 64 GiB declared, nothing behind it: the limit trips on the header alone.
        let tar = rawHeader(name: "huge.bin", sizeField: "1000000000000") + end
        let result = try extract(tar, limits: ExtractionLimits(maximumTotalBytes: 1 << 30))
        guard case .limitExceeded(let message)? = result.error else {
            Issue.record("expected limitExceeded, got \(String(describing: result.error))")
            return
        }
        #expect(message.contains("1 GiB"))
        #expect(result.directory.listing() == ["root"])
    }

    @Test("refuses names longer than the path limit")
    func pathLimit() throws {
        let result = try extract(file("abc/defgh") + end, limits: ExtractionLimits(maximumPathLength: 5))
        #expect(result.error?.description.contains("longer than 5 bytes") == true)
    }

    @Test("extracts hard links to files already extracted")
    func hardLink() throws {
        let tar = file("a", [4, 2]) + rawHeader(name: "b", flag: "1", link: "a") + end
        let result = try extract(tar)
        #expect(result.error == nil)
        #expect(result.summary?.files == ["a", "b"])
    }
}

import Foundation
import ModelIR
import Testing

@testable import Runtime

@Suite(".npy files")
struct NPYTests {
    @Test("round-trips shapes and dtypes, including scalars")
    func roundTrip() throws {
        for (type, shape) in [(ModelIRType.float32, [2, 3]), (.int64, [4]), (.bool, [])] {
            let count = shape.reduce(1, *)
            let array = NPYArray(
                dataType: type, shape: shape, data: Data(repeating: 1, count: count * (type.byteSize ?? 1)))
            #expect(try NPYArray.parse(array.encoded(), name: "x") == array)
        }
    }

    @Test("reads what NumPy writes and refuses what it cannot hold")
    func numpy() throws {
        let directory = FileManager.default.temporaryDirectory.path + "/npy-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            "import numpy as np; np.save('\(directory)/a.npy', np.arange(6, dtype=np.float32).reshape(2, 3)); "
                + "np.save('\(directory)/f.npy', np.asfortranarray(np.ones((2, 3), np.float32)))",
        ]
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        let array = try NPYArray.read(path: directory + "/a.npy")
        #expect(array.shape == [2, 3])
        #expect(array.dataType == .float32)
        #expect(throws: (any Error).self) { try NPYArray.read(path: directory + "/f.npy") }
        #expect(throws: (any Error).self) { try NPYArray.parse(Data("not npy".utf8), name: "x") }
    }
}

typealias ModelIRType = DataType

import ArgumentParser
import Diagnostics
import Foundation
import Runtime

/// `kiln run`: runs an artifact on this machine with .npy inputs and outputs.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a compiled artifact on .npy inputs.")

    @Argument(help: "The artifact: its .tar.gz or an unpacked directory.")
    var artifact: String

    @Option(name: .customLong("input"), help: "NAME=FILE.npy, once per model input.")
    var inputs: [String] = []

    @Option(help: "Directory for the outputs, one NAME.npy per output.")
    var outputDir: String

    @Option(help: "Threads the model may use.")
    var threads: Int = 1

    func run() throws {
        do {
            let opened = try OpenedArtifact(path: artifact, threads: threads)
            let model = opened.loaded
            var given: [String: String] = [:]
            for item in inputs {
                guard let equals = item.firstIndex(of: "=") else {
                    throw KilnError.client(.dataInputConfig, "--input \(item) is not NAME=FILE.npy")
                }
                given[String(item[..<equals])] = String(item[item.index(after: equals)...])
            }
            let names = Set(model.manifest.inputs.map(\.name))
            if let unknown = given.keys.sorted().first(where: { !names.contains($0) }) {
                throw KilnError.client(
                    .dataInputConfig,
                    "the model has no input \(quoted(unknown)); its inputs are \(model.manifest.inputs.map { quoted($0.name) }.joined(separator: ", "))"
                )
            }
            var buffers: [Data] = []
            for input in model.manifest.inputs {
                guard let path = given[input.name] else {
                    throw KilnError.client(
                        .dataInputConfig, "no --input given for \(quoted(input.name)) (\(input.dtype) \(input.shape))")
                }
                let array = try NPYArray.read(path: path)
                guard array.dataType.name == input.dtype else {
                    throw KilnError.client(
                        .dataInputConfig,
                        "input \(quoted(input.name)) must be \(input.dtype) but \(path) holds \(array.dataType.name)")
                }
                guard array.shape == input.shape else {
                    throw KilnError.client(
                        .dataInputConfig,
                        "input \(quoted(input.name)) must have shape \(input.shape) but \(path) has \(array.shape)")
                }
                buffers.append(array.data)
            }
            if let emulation = model.emulation {
                FileHandle.standardError.write(Data("kiln run: running under \(emulation)\n".utf8))
            }
            let outputs = try model.run(buffers)
            try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
            for (tensor, data) in zip(model.manifest.outputs, outputs) {
                let array = NPYArray(dataType: tensor.dataType ?? .float32, shape: tensor.shape, data: data)
                let path = outputDir + "/" + Self.fileName(tensor.name)
                try array.encoded().write(to: URL(fileURLWithPath: path))
                print("\(tensor.name)  \(tensor.dtype) \(tensor.shape)  -> \(path)")
            }
        } catch let error as KilnError {
            throw fail(error.failureReason)
        }
    }

    /// The output's name with every character outside [A-Za-z0-9._-] replaced by _, plus .npy.
    static func fileName(_ name: String) -> String {
        let safe = String(
            name.unicodeScalars.map { scalar -> Character in
                let allowed = CharacterSet(
                    charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
                return allowed.contains(scalar) ? Character(scalar) : "_"
            })
        let base = safe.isEmpty || safe == "." || safe == ".." ? "output" : safe
        return base + ".npy"
    }
}

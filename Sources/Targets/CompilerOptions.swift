import Diagnostics
import Foundation

/// `OutputConfig.CompilerOptions`: a JSON object; for CPUs `mcpu` and `mattr`.
public struct CompilerOptions: Sendable, Equatable {
    public var mcpu: String?
    public var mattr: [String]

    public static func parse(_ text: String?) throws -> CompilerOptions {
        guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            return CompilerOptions(mcpu: nil, mattr: [])
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw KilnError.client(.targetDevice, "CompilerOptions \(quoted(text, limit: 80)) is not a JSON object")
        }
        let known: Set<String> = ["mcpu", "mattr"]
        if let unknown = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw KilnError.client(
                .targetDevice,
                "CompilerOptions key \(quoted(unknown)) is not supported for CPU targets; use mcpu and mattr")
        }
        var options = CompilerOptions(mcpu: nil, mattr: [])
        if let value = object["mcpu"] {
            guard let mcpu = value as? String else {
                throw KilnError.client(.targetDevice, "CompilerOptions mcpu must be a string")
            }
            options.mcpu = mcpu
        }
        if let value = object["mattr"] {
            guard let mattr = value as? [String] else {
                throw KilnError.client(
                    .targetDevice, "CompilerOptions mattr must be a list of strings like [\"+avx2\"]")
            }
            options.mattr = mattr
        }
        return options
    }
}

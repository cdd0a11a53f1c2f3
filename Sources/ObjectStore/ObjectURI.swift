import Diagnostics

/// Where a model or artifact lives, as the API's S3Uri fields and the CLI give it.
public enum ObjectURI: Equatable, Sendable, CustomStringConvertible {
    /// A path on this machine (from a plain path or a `file://` URI).
    case file(path: String)
    /// `s3://bucket/key`.
    case s3(bucket: String, key: String)
    /// `https://...` (an S3 URL in virtual-host or path style).
    case https(String)

    /// Parses `text`; relative paths are taken against `workingDirectory`.
    public init(parsing text: String, workingDirectory: String) throws {
        if text.hasPrefix("s3://") {
            let rest = text.dropFirst("s3://".count)
            guard let slash = rest.firstIndex(of: "/"), slash != rest.startIndex,
                rest.index(after: slash) != rest.endIndex
            else {
                throw KilnError.client(
                    .inputConfiguration, "\(quoted(text)) is not an S3 URI of the form s3://bucket/key")
            }
            self = .s3(bucket: String(rest[..<slash]), key: String(rest[rest.index(after: slash)...]))
        } else if text.hasPrefix("file://") {
            var rest = String(text.dropFirst("file://".count))
            if rest.hasPrefix("localhost/") { rest = String(rest.dropFirst("localhost".count)) }
            guard rest.hasPrefix("/"), let decoded = Self.percentDecoded(rest) else {
                throw KilnError.client(
                    .inputConfiguration, "\(quoted(text)) is not a file URI of the form file:///absolute/path")
            }
            self = .file(path: decoded)
        } else if text.hasPrefix("https://") || text.hasPrefix("http://") {
            self = .https(text)
        } else if text.contains("://") {
            throw KilnError.client(
                .inputConfiguration,
                "\(quoted(text)) uses a scheme Kiln does not read; use s3://, https://, file:// or a path")
        } else {
            guard !text.isEmpty else { throw KilnError.client(.inputConfiguration, "the model location is empty") }
            self = .file(path: text.hasPrefix("/") ? text : workingDirectory + "/" + text)
        }
    }

    public var description: String {
        switch self {
        case .file(let path): return path
        case .s3(let bucket, let key): return "s3://\(bucket)/\(key)"
        case .https(let url): return url
        }
    }

    /// The last path component: `model.tar.gz` for `s3://b/models/model.tar.gz`.
    public var baseName: String {
        let path: String
        switch self {
        case .file(let value): path = value
        case .s3(_, let key): path = key
        case .https(let url): path = String(url.split(separator: "?").first ?? "")
        }
        return path.split(separator: "/").last.map(String.init) ?? path
    }

    static func percentDecoded(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

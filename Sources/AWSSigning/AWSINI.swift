import Foundation

/// The AWS shared config and credentials file format: `[section]` lines,
/// `key = value` lines, `#`/`;` comments, and nested settings (a `key =`
/// line with no value followed by indented `name = value` lines, read as
/// `key.name`, as in `s3 =` / `  addressing_style = path`).
public struct AWSINI: Sendable {
    public struct ParseError: Error, Sendable {
        public var line: Int
        public var message: String
    }

    /// Sections in file order, each with its settings.
    public private(set) var sections: [(name: String, values: [String: String])] = []

    public init(parsing text: String) throws(ParseError) {
        var nestedUnder: String?
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                sections.append((String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces), [:]))
                nestedUnder = nil
                continue
            }
            guard let equals = line.firstIndex(of: "="), !sections.isEmpty else {
                throw ParseError(line: number + 1, message: "expected [section] or key = value")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            let indented = raw.first == " " || raw.first == "\t"
            if indented, let parent = nestedUnder {
                sections[sections.count - 1].values[parent + "." + key] = value
                continue
            }
            nestedUnder = value.isEmpty ? key : nil
            sections[sections.count - 1].values[key] = value
        }
    }

    /// The settings of the section named `name`, if there is one.
    public func section(_ name: String) -> [String: String]? {
        sections.last(where: { $0.name == name })?.values
    }
}

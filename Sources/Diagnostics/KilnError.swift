/// The one error type every stage of Kiln ends in: whose fault it is, a fixed
/// category, and a message that says what is wrong and how to fix it. Its
/// `failureReason` is the line a job record, the CLI and logs show.
public struct KilnError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Who caused the failure: the user's input (`ClientError`) or Kiln (`ServerError`).
    public enum Party: String, Sendable {
        case client = "ClientError"
        case server = "ServerError"
    }

    /// The fixed failure categories of DESIGN.md's pipeline table.
    public enum Category: String, Sendable, CaseIterable {
        case inputConfiguration = "InputConfiguration"
        case dataInputConfig = "DataInputConfig"
        case modelCheck = "ModelCheck"
        case operatorNotImplemented = "OperatorNotImplemented"
        case operatorAttributeNotImplemented = "OperatorAttributeNotImplemented"
        case unsupportedDataType = "UnsupportedDataType"
        case targetDevice = "TargetDevice"
        case outputConfiguration = "OutputConfiguration"
        case stoppingCondition = "StoppingCondition"
        case optimize = "Optimize"
        case build = "Build"
        case pack = "Pack"
        case check = "Check"
        case workerLost = "WorkerLost"
        case `internal` = "Internal"
    }

    /// A failure reason is at most this many characters (the API's limit).
    public static let maximumReasonLength = 1024

    public var party: Party
    public var category: Category
    public var message: String

    public init(_ party: Party, _ category: Category, _ message: String) {
        self.party = party
        self.category = category
        self.message = message
    }

    public static func client(_ category: Category, _ message: String) -> KilnError {
        KilnError(.client, category, message)
    }

    public static func server(_ category: Category, _ message: String) -> KilnError {
        KilnError(.server, category, message)
    }

    /// `ClientError: <Category>: <message>` on one line, cut to 1024 characters.
    public var failureReason: String {
        let line = "\(party.rawValue): \(category.rawValue): \(message)"
            .map { $0.isNewline ? " " : $0 }
        let text = String(line)
        guard text.count > Self.maximumReasonLength else { return text }
        return String(text.prefix(Self.maximumReasonLength - 3)) + "..."
    }

    public var description: String { failureReason }
}

/// Quotes a model- or user-supplied string for a failure reason: visible,
/// bounded, and unable to break the one-line format.
public func quoted(_ text: some StringProtocol, limit: Int = 120) -> String {
    var result = "'"
    for (index, scalar) in text.unicodeScalars.enumerated() {
        if index == limit {
            result += "..."
            break
        }
        switch scalar {
        case "'": result += "\\'"
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        default:
            if scalar.value < 0x20 || scalar.value == 0x7F {
                result += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
    }
    return result + "'"
}

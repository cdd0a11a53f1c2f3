import AWSSigning
import Foundation
import Jobs

/// The users `kiln serve` accepts: an AWS shared-credentials INI file, one
/// section per user with `aws_access_key_id`, `aws_secret_access_key` and
/// `aws_account_id`. The file must not be readable by group or others.
public struct Credentials: Sendable {
    public struct User: Sendable, Equatable {
        public var name: String
        public var accessKeyID: String
        public var secretAccessKey: String
        public var accountID: String
    }

    public private(set) var users: [String: User] = [:]

    public init(users: [User]) throws {
        for user in users {
            guard self.users[user.accessKeyID] == nil else {
                throw APIError(.validation, "access key \(user.accessKeyID) appears twice")
            }
            self.users[user.accessKeyID] = user
        }
    }

    public func user(accessKeyID: String) -> User? { users[accessKeyID] }

    /// Reads and checks a credentials file; a clear error for each problem.
    public static func load(path: String) throws -> Credentials {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw APIError(.validation, "cannot read the credentials file \(path)")
        }
        let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0o777
        guard mode & 0o077 == 0 else {
            throw APIError(
                .validation,
                "the credentials file \(path) is readable by others (mode \(String(mode, radix: 8))); chmod 600 it")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw APIError(.validation, "cannot read the credentials file \(path)")
        }
        return try parse(String(decoding: data, as: UTF8.self), source: path)
    }

    /// Parses the INI text: `[section]` lines, `key = value` lines, `#` and `;` comments.
    public static func parse(_ text: String, source: String = "credentials") throws -> Credentials {
        let sections: [(name: String, values: [String: String])]
        do {
            sections = try AWSINI(parsing: text).sections
        } catch {
            throw APIError(.validation, "\(source) line \(error.line): \(error.message)")
        }
        var users: [User] = []
        for (name, values) in sections {
            guard let key = values["aws_access_key_id"], let secret = values["aws_secret_access_key"],
                let account = values["aws_account_id"]
            else {
                throw APIError(
                    .validation,
                    "\(source) [\(name)] needs aws_access_key_id, aws_secret_access_key and aws_account_id")
            }
            guard account.count == 12, account.allSatisfy(\.isNumber) else {
                throw APIError(.validation, "\(source) [\(name)]: aws_account_id must be 12 digits")
            }
            users.append(User(name: name, accessKeyID: key, secretAccessKey: secret, accountID: account))
        }
        guard !users.isEmpty else { throw APIError(.validation, "\(source) has no users") }
        return try Credentials(users: users)
    }
}

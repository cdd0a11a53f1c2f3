import Glibc

/// Where Kiln keeps its state with no configuration: `$KILN_HOME`, by default
/// `~/.kiln`, holding the local object store (`objects/`), job work dirs
/// (`work/`) and, later, the job store.
public struct KilnHome: Sendable, Equatable {
    public var path: String

    public init(path: String) { self.path = path }

    /// `$KILN_HOME`, else `$HOME/.kiln`.
    public static func fromEnvironment() -> KilnHome {
        if let value = environment("KILN_HOME"), !value.isEmpty { return KilnHome(path: value) }
        let home = environment("HOME") ?? "/tmp"
        return KilnHome(path: home + "/.kiln")
    }

    public var objectsDirectory: String { path + "/objects" }
    public var workDirectory: String { path + "/work" }
}

func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    return String(cString: value)
}

/// Creates `path` and its parents (like `mkdir -p`).
public func makeDirectories(_ path: String) throws {
    var prefix = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        prefix += "/" + component
        if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
            throw ObjectStoreError.io("cannot create directory \(prefix): \(String(cString: strerror(errno)))")
        }
    }
}

public enum ObjectStoreError: Error, Equatable {
    case io(String)
}

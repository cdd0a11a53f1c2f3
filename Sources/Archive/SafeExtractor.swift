import Glibc

/// Extracts a tar stream into a directory without ever writing outside it.
///
/// Refused: absolute names, `..` components, device and FIFO entries, links
/// whose target (followed through the archive's own symlinks) leaves the
/// directory, and anything past the limits. Symlinks are created last, after
/// every file, so no write can pass through one; files are created with
/// O_EXCL | O_NOFOLLOW and plain permissions (no setuid, no archive owners).
public struct SafeExtractor {
    public var limits: ExtractionLimits

    public init(limits: ExtractionLimits = .standard) { self.limits = limits }

    /// What an extraction produced, as paths relative to the root.
    public struct Summary: Sendable, Equatable {
        public var files: [String] = []
        public var directories: [String] = []
        public var symlinks: [String] = []
        public var totalBytes: Int64 = 0
        public var entries = 0
    }

    /// Extracts `.tar` data read from `source` under `root`, which must be an existing directory.
    public func extract(from source: ByteSource, into root: String) throws -> Summary {
        let reader = TarReader(source)
        var summary = Summary()
        var kinds: [String: EntryKind] = [:]
        var pendingSymlinks: [(path: String, target: String)] = []
        let rootDescriptor = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootDescriptor >= 0 else { throw ArchiveError.io("cannot open work dir \(root): \(errnoText())") }
        defer { close(rootDescriptor) }

        while let entry = try reader.next() {
            summary.entries += 1
            guard summary.entries <= limits.maximumEntries else {
                throw ArchiveError.limitExceeded(
                    "the archive has more than \(limits.maximumEntries) entries, the configured limit")
            }
            guard entry.path.utf8.count <= limits.maximumPathLength else {
                throw ArchiveError.unsafeEntry(
                    path: String(entry.path.prefix(80)) + "...",
                    reason: "the name is longer than \(limits.maximumPathLength) bytes")
            }
            let components = try Self.normalizedComponents(entry.path)
            if components.isEmpty {
                // "./" itself: the root, which exists already.
                guard entry.kind == .directory else {
                    throw ArchiveError.unsafeEntry(path: entry.path, reason: "a non-directory entry names the root")
                }
                continue
            }
            let path = components.joined(separator: "/")
            try ensureParents(components, rootDescriptor, &kinds, &summary)
            switch entry.kind {
            case .directory:
                switch kinds[path] {
                case nil:
                    try makeDirectory(path, rootDescriptor)
                    kinds[path] = .directory
                    summary.directories.append(path)
                case .directory:
                    continue
                default:
                    throw ArchiveError.unsafeEntry(path: path, reason: "it appears twice in the archive")
                }
            case .file:
                guard kinds[path] == nil else {
                    throw ArchiveError.unsafeEntry(path: path, reason: "it appears twice in the archive")
                }
                let remaining = limits.maximumTotalBytes - summary.totalBytes
                guard entry.size <= remaining else {
                    throw ArchiveError.limitExceeded(
                        "\(path) is \(byteCountText(entry.size)); the archive would exceed "
                            + "\(byteCountText(limits.maximumTotalBytes)) unpacked, the configured limit")
                }
                try writeFile(path, rootDescriptor, reader)
                summary.totalBytes += entry.size
                kinds[path] = .file
                summary.files.append(path)
            case .symlink(let target):
                guard kinds[path] == nil else {
                    throw ArchiveError.unsafeEntry(path: path, reason: "it appears twice in the archive")
                }
                guard !target.isEmpty, !target.hasPrefix("/") else {
                    throw ArchiveError.unsafeEntry(
                        path: path, reason: "symlink to absolute path \(target) points outside the work dir")
                }
                kinds[path] = .symlink(target)
                pendingSymlinks.append((path, target))
            case .hardlink(let target):
                guard kinds[path] == nil else {
                    throw ArchiveError.unsafeEntry(path: path, reason: "it appears twice in the archive")
                }
                let targetComponents: [String]
                do {
                    targetComponents = try Self.normalizedComponents(target)
                } catch {
                    throw ArchiveError.unsafeEntry(
                        path: path, reason: "hard link to \(target) points outside the work dir")
                }
                let targetPath = targetComponents.joined(separator: "/")
                guard kinds[targetPath] == .file else {
                    throw ArchiveError.unsafeEntry(
                        path: path, reason: "hard link to \(target), which is not a file extracted before it")
                }
                guard linkat(rootDescriptor, targetPath, rootDescriptor, path, 0) == 0 else {
                    throw ArchiveError.io("cannot create hard link \(path): \(errnoText())")
                }
                kinds[path] = .file
                summary.files.append(path)
            case .characterDevice, .blockDevice, .fifo:
                throw ArchiveError.unsafeEntry(
                    path: path,
                    reason: "it is a device or FIFO; a model archive may hold only files, directories and links")
            case .unsupported(let flag):
                throw ArchiveError.unsafeEntry(
                    path: path, reason: "tar entry type '\(String(UnicodeScalar(flag)))' is not supported")
            }
        }

        // Every file is in place: now each symlink can be resolved through the
        // archive's own links, and created only if it stays inside.
        for (path, target) in pendingSymlinks {
            guard Self.resolve(link: path, target: target, kinds: kinds) else {
                throw ArchiveError.unsafeEntry(path: path, reason: "symlink to \(target) points outside the work dir")
            }
        }
        for (path, target) in pendingSymlinks {
            guard symlinkat(target, rootDescriptor, path) == 0 else {
                throw ArchiveError.io("cannot create symlink \(path): \(errnoText())")
            }
            summary.symlinks.append(path)
        }
        return summary
    }

    enum EntryKind: Equatable {
        case file
        case directory
        case symlink(String)
    }

    /// Splits a tar name into components, dropping "." and empty ones;
    /// refuses absolute names, "..", and NUL bytes.
    static func normalizedComponents(_ name: String) throws -> [String] {
        if name.hasPrefix("/") {
            throw ArchiveError.unsafeEntry(path: name, reason: "absolute paths are not allowed")
        }
        if name.utf8.contains(0) {
            throw ArchiveError.unsafeEntry(path: name, reason: "the name contains a NUL byte")
        }
        var components: [String] = []
        for part in name.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                throw ArchiveError.unsafeEntry(path: name, reason: "'..' components are not allowed")
            }
            components.append(String(part))
        }
        return components
    }

    /// Follows `target` from the link's directory, through the archive's own
    /// symlinks, and says whether every step stays under the root.
    static func resolve(link: String, target: String, kinds: [String: EntryKind]) -> Bool {
        var stack = Array(link.split(separator: "/").map(String.init).dropLast())
        var queue = target.split(separator: "/").map(String.init)
        var hops = 0
        while !queue.isEmpty {
            let part = queue.removeFirst()
            if part == "." || part.isEmpty { continue }
            if part == ".." {
                if stack.isEmpty { return false }
                stack.removeLast()
                continue
            }
            stack.append(part)
            if case .symlink(let next) = kinds[stack.joined(separator: "/")] {
                hops += 1
                if hops > 40 || next.hasPrefix("/") { return false }
                stack.removeLast()
                queue = next.split(separator: "/").map(String.init) + queue
            }
        }
        return true
    }

    private func ensureParents(
        _ components: [String], _ root: Int32, _ kinds: inout [String: EntryKind], _ summary: inout Summary
    ) throws {
        var prefix = ""
        for component in components.dropLast() {
            prefix = prefix.isEmpty ? component : prefix + "/" + component
            switch kinds[prefix] {
            case .directory: continue
            case nil:
                try makeDirectory(prefix, root)
                kinds[prefix] = .directory
                summary.directories.append(prefix)
            default:
                throw ArchiveError.unsafeEntry(
                    path: components.joined(separator: "/"), reason: "\(prefix) is not a directory in the archive")
            }
        }
    }

    private func makeDirectory(_ path: String, _ root: Int32) throws {
        guard mkdirat(root, path, 0o755) == 0 else {
            throw ArchiveError.io("cannot create directory \(path): \(errnoText())")
        }
    }

    private func writeFile(_ path: String, _ root: Int32, _ reader: TarReader) throws {
        let descriptor = openat(root, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw ArchiveError.io("cannot create \(path): \(errnoText())") }
        let sink = FileSink(descriptor: descriptor)
        try reader.readData { try sink.write($0) }
    }
}

/// The size of the file at `path`, following symlinks.
public func fileSize(_ path: String) throws -> Int64 {
    var info = stat()
    guard stat(path, &info) == 0 else { throw ArchiveError.io("cannot stat \(path): \(errnoText())") }
    return Int64(info.st_size)
}

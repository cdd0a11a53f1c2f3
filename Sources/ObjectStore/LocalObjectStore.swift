import Diagnostics
import Glibc

/// The embedded object store: `s3://bucket/key` is the file
/// `<root>/bucket/key`, so a laptop needs no S3 to run jobs.
public struct LocalObjectStore: Sendable {
    public var root: String

    public init(root: String) { self.root = root }

    public init(home: KilnHome) { self.init(root: home.objectsDirectory) }

    /// The file that backs `s3://bucket/key`, refusing keys that would leave the store.
    public func path(bucket: String, key: String) throws -> String {
        let validBucket =
            (3...63).contains(bucket.utf8.count)
            && bucket.utf8.allSatisfy {
                ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D
            }
        guard validBucket else {
            throw KilnError.client(
                .inputConfiguration,
                "\(quoted(bucket)) is not a valid S3 bucket name (3-63 lower-case letters, digits, '.' or '-')")
        }
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !key.utf8.contains(0), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw KilnError.client(
                .inputConfiguration,
                "S3 key \(quoted(key)) has an empty, '.' or '..' path segment, which the local object store cannot hold"
            )
        }
        return "\(root)/\(bucket)/\(key)"
    }
}

/// The fetch stage: makes a model's URI a readable local file.
public struct ObjectFetcher: Sendable {
    public var store: ObjectStoreChoice

    public init(store: ObjectStoreChoice) { self.store = store }

    public init(store: LocalObjectStore) { self.init(store: .local(store)) }

    /// The local path to read `uri` from: local files are read in place, S3 objects are downloaded into
    /// `downloadDirectory`.
    public func localPath(for uri: ObjectURI, downloadDirectory: String) throws -> String {
        switch (uri, store) {
        case (.file(let path), _):
            try requireRegularFile(path, shownAs: path, missing: "does not exist")
            return path
        case (.s3(let bucket, let key), .local(let local)):
            let path = try local.path(bucket: bucket, key: key)
            try requireRegularFile(
                path, shownAs: uri.description,
                missing:
                    "does not exist (bucket \(quoted(bucket)), key \(quoted(key)); the local object store keeps it at \(path))"
            )
            return path
        case (.https, .local(let local)):
            throw KilnError.client(
                .inputConfiguration,
                "\(uri) is an https URI, which needs an S3 endpoint or credentials (AWS_ENDPOINT_URL, "
                    + "AWS_ACCESS_KEY_ID, ~/.aws); none is configured, so s3:// URIs read the local object store "
                    + "(\(local.root))")
        case (.s3(let bucket, let key), .s3(let client)):
            return try download(client, bucket: bucket, key: key, uri: uri, into: downloadDirectory)
        case (.https(let url), .s3(let client)):
            guard let (bucket, key) = client.configuration.bucketAndKey(https: url) else {
                throw KilnError.client(
                    .inputConfiguration,
                    "\(url) is not an S3 object URL (https://bucket.s3.region.amazonaws.com/key, "
                        + "https://s3.region.amazonaws.com/bucket/key, or the configured endpoint's)")
            }
            return try download(client, bucket: bucket, key: key, uri: uri, into: downloadDirectory)
        }
    }

    private func download(_ client: S3Client, bucket: String, key: String, uri: ObjectURI, into directory: String)
        throws -> String
    {
        do {
            try makeDirectories(directory)
        } catch {
            throw KilnError.server(.internal, "cannot create \(directory): \(error)")
        }
        let path = directory + "/" + (uri.baseName.isEmpty || uri.baseName.hasPrefix(".") ? "model" : uri.baseName)
        do {
            try client.download(bucket: bucket, key: key, to: path)
        } catch {
            throw S3Client.reason(error, uri: uri.description, writing: false)
        }
        return path
    }

    private func requireRegularFile(_ path: String, shownAs: String, missing: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw KilnError.client(.inputConfiguration, "\(shownAs) \(missing)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw KilnError.client(
                .inputConfiguration, "\(shownAs) is not a regular file; give the path of a model.tar.gz")
        }
        guard access(path, R_OK) == 0 else {
            throw KilnError.client(.inputConfiguration, "\(shownAs) is not readable")
        }
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import Jobs
import Logging
import NIOCore
import Pipeline
import ServiceLifecycle

/// A request context that knows the client's address, for access logs.
public struct KilnRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// `kiln serve`: the compilation-job API over HTTP (AWS JSON 1.1, SigV4),
/// with job runners in the same process sharing the job store.
public struct APIServer: Sendable {
    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        public var port = 8080
        public var workers = 1
        public var region = JobService.defaultRegion()
        /// nil: no authentication, every caller is the default account (loopback only).
        public var credentials: Credentials?
        public var maxBodyBytes = 1 << 20
        /// How long a draining server lets running jobs finish before putting them back in the queue.
        public var gracePeriod: Duration = .seconds(30)
        public var idleTimeout: Int64 = 60

        public init() {}
    }

    public var configuration: Configuration
    public var store: any JobStore
    public var environment: PipelineEnvironment
    public var logger: Logger

    public init(configuration: Configuration, store: any JobStore, environment: PipelineEnvironment, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.environment = environment
        self.logger = logger
    }

    /// Whether an address is loopback, where serving without credentials is allowed.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Serves until SIGTERM or SIGINT, then drains. `onListening` hears the bound port.
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        guard configuration.credentials != nil || Self.isLoopback(configuration.host) else {
            throw APIError(
                .validation,
                "refusing to serve \(configuration.host) without --credentials: only loopback may go unauthenticated")
        }
        let responder = APIResponder(
            operations: Operations(), store: store, region: configuration.region,
            verifier: configuration.credentials.map { SigV4Verifier(credentials: $0, region: configuration.region) },
            maxBodyBytes: configuration.maxBodyBytes, logger: logger)
        var services: [any Service] = []
        if configuration.workers > 0 {
            let worker = JobWorker(
                runner: JobRunner(store: store, environment: environment), concurrency: configuration.workers,
                log: { [logger] line in logger.info("\(line)") })
            services.append(RunnerService(worker: worker, gracePeriod: configuration.gracePeriod, logger: logger))
        }
        let app = Application(
            responder: responder,
            server: .http1(configuration: .init(idleTimeout: .seconds(configuration.idleTimeout))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            services: services,
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }
}

/// Answers every request: `GET /ping`, and the API at `POST /`.
struct APIResponder: HTTPResponder {
    let operations: Operations
    let store: any JobStore
    let region: String
    let verifier: SigV4Verifier?
    let maxBodyBytes: Int
    let logger: Logger

    static let requestIDHeader = HTTPField.Name("x-amzn-RequestId")!
    static let errorTypeHeader = HTTPField.Name("x-amzn-ErrorType")!
    static let targetHeader = HTTPField.Name("X-Amz-Target")!

    func respond(to request: Request, context: KilnRequestContext) async throws -> Response {
        let started = ContinuousClock.now
        let requestID = UUID().uuidString.lowercased()
        var account = "-"
        let target = request.headers[Self.targetHeader]
        let reply = await answer(request, target: target, account: &account)
        var headers = HTTPFields()
        headers[.contentType] = reply.contentType
        headers[Self.requestIDHeader] = requestID
        if let errorType = reply.errorType { headers[Self.errorTypeHeader] = errorType }
        let elapsed = ContinuousClock.now - started
        logger.info(
            "request",
            metadata: [
                "request_id": .string(requestID), "method": .string(request.method.rawValue),
                "path": .string(request.uri.path), "target": .string(target ?? "-"),
                "status": .stringConvertible(reply.status), "account": .string(account),
                "ms": .string(
                    String(
                        format: "%.2f",
                        Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)),
                "client": .string(context.remoteAddress?.ipAddress ?? "-"),
                "error": .string(reply.errorType ?? "-"),
            ])
        return Response(
            status: HTTPResponse.Status(code: reply.status), headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: reply.body)))
    }

    struct Answer {
        var status: Int
        var body: Data
        var errorType: String?
        var contentType = "application/x-amz-json-1.1"

        init(_ reply: Operations.Reply) {
            status = reply.status
            body = reply.body
            errorType = reply.errorType
        }

        init(status: Int, text: String) {
            self.status = status
            body = Data(text.utf8)
            contentType = "text/plain"
        }
    }

    func answer(_ request: Request, target: String?, account: inout String) async -> Answer {
        if request.uri.path == "/ping" {
            return request.method == .get || request.method == .head
                ? Answer(status: 200, text: "healthy\n")
                : Answer(.error("UnknownOperationException", "use GET /ping", status: 405))
        }
        guard request.method == .post, request.uri.path == "/" else {
            return Answer(.error("UnknownOperationException", "Kiln serves the API at POST /", status: 404))
        }
        var body: [UInt8] = []
        do {
            for try await chunk in request.body {
                guard body.count + chunk.readableBytes <= maxBodyBytes else {
                    return Answer(
                        .error("SerializationException", "The request body exceeds \(maxBodyBytes) bytes", status: 413))
                }
                body += chunk.readableBytesView
            }
        } catch {
            return Answer(.error("SerializationException", "The request body could not be read", status: 400))
        }
        var callerAccount = JobService.defaultAccount()
        if let verifier {
            var headers: [(String, String)] = request.headers.map { ($0.name.canonicalName, $0.value) }
            if let authority = request.head.authority { headers.append(("host", authority)) }
            let signed = SigV4Verifier.Request(
                method: request.method.rawValue, path: request.uri.path, query: request.uri.query ?? "",
                headers: headers, body: body)
            do {
                callerAccount = try verifier.verify(signed).accountID
            } catch {
                return Answer(.error(error.code, error.message, status: error.status))
            }
        }
        account = callerAccount
        let service = JobService(store: store, region: region, account: callerAccount)
        return Answer(operations.handle(target: target, body: Data(body), service: service))
    }
}

/// The server's job runners, drained on shutdown: no new claims, running
/// jobs get the grace period, then go back in the queue.
public struct RunnerService: Service {
    let worker: JobWorker
    let gracePeriod: Duration
    let logger: Logger

    public init(worker: JobWorker, gracePeriod: Duration, logger: Logger) {
        self.worker = worker
        self.gracePeriod = gracePeriod
        self.logger = logger
    }

    public func run() async throws {
        let task = Task { try await worker.run() }
        await withGracefulShutdownHandler {
            _ = await task.result
        } onGracefulShutdown: {
            logger.info("draining job runners (grace period \(gracePeriod))")
            worker.drain.begin()
            Task {
                try? await Task.sleep(for: gracePeriod)
                task.cancel()
            }
        }
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import Jobs
import Logging
import NIOCore
import ServiceLifecycle

/// `kiln worker` as a process: the runner slots, an optional `/metrics`
/// endpoint, and SIGTERM/SIGINT draining (no new claims; running jobs get
/// the grace period, then go back to the queue).
public enum WorkerProcess {
    public static func run(
        worker: JobWorker, metricsHost: String = "127.0.0.1", metricsPort: Int?, gracePeriod: Duration,
        logger: Logger, onMetricsListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            // The runners ending (an idle --exit-when-idle worker, or a drain) ends the process.
            .init(
                service: RunnerService(worker: worker, gracePeriod: gracePeriod, logger: logger),
                successTerminationBehavior: .gracefullyShutdownGroup)
        ]
        if let metricsPort {
            let router = Router()
            let store = worker.runner.store
            router.get("/metrics") { _, _ -> Response in
                let text = worker.metrics.prometheusText(queueDepth: try? store.queuedCount())
                var headers = HTTPFields()
                headers[.contentType] = "text/plain; version=0.0.4"
                return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
            }
            let application = Application(
                router: router, configuration: .init(address: .hostname(metricsHost, port: metricsPort)),
                onServerRunning: { channel in onMetricsListening(channel.localAddress?.port ?? 0) }, logger: logger)
            services.append(.init(service: application))
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

import APIServer
import ArgumentParser
import Foundation
import Jobs
import Logging
import Pipeline

/// `kiln serve`: the compilation-job API over HTTP for boto3, the aws CLI and SDKs.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the compilation-job API (AWS JSON 1.1, SigV4) and run its jobs.")

    @Option(help: "Address to listen on (loopback unless --credentials is given).") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0: any free port, printed at start).") var port = 8080
    @Option(help: "Job runners in this process (0: jobs are left to `kiln worker`).") var workers = 1
    @Option(help: "AWS shared-credentials file of the users (with aws_account_id); mode 600.")
    var credentials: String?
    @Option(help: "The region requests must be signed for and ARNs name.") var region = JobService.defaultRegion()
    @Option(help: "Seconds a draining server lets running jobs finish before re-queueing them.")
    var graceSeconds = 30
    @Option(help: "Largest request body accepted, in bytes.") var maxBodyBytes = 1 << 20
    @Option(help: "Log level: trace, debug, info (access logs), notice, warning, error.") var logLevel = "info"
    @OptionGroup var store: StoreOptions

    func run() async throws {
        bootstrapLogging(level: Logger.Level(rawValue: logLevel) ?? .info)
        var configuration = APIServer.Configuration()
        configuration.host = host
        configuration.port = port
        configuration.workers = workers
        configuration.region = region
        configuration.gracePeriod = .seconds(graceSeconds)
        configuration.maxBodyBytes = maxBodyBytes
        do {
            configuration.credentials = try credentials.map(Credentials.load(path:))
        } catch let error as APIError {
            throw fail("kiln serve: \(error.message)")
        }
        let service = try store.service()
        let server = APIServer(
            configuration: configuration, store: service.store, environment: try PipelineEnvironment.fromProcess(),
            logger: Logger(label: "kiln.serve"))
        do {
            try await server.run { port in
                // Written straight to fd 1, unbuffered: a caller waiting for the port sees it at once.
                FileHandle.standardOutput.write(
                    Data("kiln serve: listening on http://\(host):\(port) (region \(region))\n".utf8))
            }
        } catch let error as APIError {
            throw fail("kiln serve: \(error.message)")
        }
    }
}

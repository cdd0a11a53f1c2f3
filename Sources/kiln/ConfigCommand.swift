import ArgumentParser
import Foundation
import Jobs
import ObjectStore
import Pipeline

/// `kiln config`: which job store and object store this environment selects, and why.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show the job store and object store (local or S3) this environment selects.")

    @OptionGroup var store: StoreOptions

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() async throws {
        let environment: PipelineEnvironment
        let storeDescription: String
        do {
            environment = try PipelineEnvironment.fromProcess()
            storeDescription = try JobStoreLocation.open(store.location, home: environment.home.path).description
        } catch let error as APIError {
            throw fail(error.message)
        } catch let error as KilnError {
            throw fail(error.failureReason)
        }
        let settings =
            [("kiln home", environment.home.path), ("job store", storeDescription)] + environment.objectStore.settings
        if json {
            let object = Dictionary(
                uniqueKeysWithValues: settings.map { ($0.0.replacingOccurrences(of: " ", with: "_"), $0.1) })
            print(try jsonText(object))
        } else {
            let width = settings.map(\.0.count).max() ?? 0
            for (name, value) in settings {
                print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
            }
        }
    }
}

import ArgumentParser
import Foundation
import Targets

/// `kiln targets`: every TargetDevice of the API, what it is, and what Kiln does with it.
struct TargetsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "targets", abstract: "List the TargetDevices with their CPU, accelerator and support status.")

    @Flag(help: "Print the descriptors as JSON instead of a table.")
    var json = false

    func run() async throws {
        let descriptors: [String: TargetDescriptor]
        do {
            descriptors = try TargetCatalog.load()
        } catch let error as KilnError {
            throw fail(error.failureReason)
        }
        let ordered = TargetCatalog.apiDeviceNames.compactMap { descriptors[$0] }
        if json {
            print(try jsonText(ordered))
            return
        }
        let width = ordered.map(\.name.count).max() ?? 0
        for descriptor in ordered {
            let status = descriptor.status.padding(toLength: 11, withPad: " ", startingAt: 0)
            let what = descriptor.accelerator.map { "\(descriptor.cpu) + \($0)" } ?? descriptor.cpu
            print(
                descriptor.name.padding(toLength: width, withPad: " ", startingAt: 0)
                    + "  \(status)  \(descriptor.target.triple) -mcpu=\(descriptor.target.mcpu)  \(what)")
        }
        let counts = Dictionary(grouping: ordered, by: \.status).mapValues(\.count)
        print(
            "\(ordered.count) devices: \(counts["supported"] ?? 0) supported, \(counts["planned"] ?? 0) planned, "
                + "\(counts["accelerator"] ?? 0) need an accelerator backend")
    }
}

import Diagnostics
import Foundation
import Testing

@testable import Targets

@Suite("the TargetDevice descriptors")
struct TargetCatalogTests {
    @Test("every one of the API's 37 TargetDevices has a descriptor, and every descriptor follows the schema")
    func everyDeviceValidates() throws {
        let directory = try #require(TargetCatalog.directory)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".json") }
        #expect(files.count == 37)
        let descriptors = try TargetCatalog.load()
        #expect(Set(descriptors.keys) == Set(TargetCatalog.apiDeviceNames))
        for file in files {
            let descriptor = try JSONDecoder().decode(
                TargetDescriptor.self, from: Data(contentsOf: directory.appendingPathComponent(file)))
            #expect(descriptor.problems(file: file) == [], "\(file)")
        }
        let supported = descriptors.values.filter { $0.status == "supported" }.map(\.name).sorted()
        #expect(supported == ["lambda", "ml_c4", "ml_c5", "ml_m4", "ml_m5", "sbe_c"])
    }

    @Test("the schema check catches what a hand-edited file gets wrong")
    func schemaCatchesMistakes() throws {
        var descriptor = try #require(try TargetCatalog.load()["ml_p3"])
        descriptor.accelerator = nil
        descriptor.target.triple = "riscv64-unknown-linux-gnu"
        descriptor.target.features.append("sse9")
        let problems = descriptor.problems(file: "ml_p2.json")
        #expect(problems.contains("name 'ml_p3' does not match the file name"))
        #expect(problems.contains("an accelerator is named exactly when the status is accelerator"))
        #expect(problems.contains("triple 'riscv64-unknown-linux-gnu' is not one Kiln knows"))
        #expect(problems.contains("feature 'sse9' of broadwell is not one Kiln knows"))
    }

    @Test("accelerator and not-yet devices fail with their descriptor's reason, never a silent CPU artifact")
    func honestFailures() {
        let cases: [(String, String)] = [
            (
                "ml_p3",
                "ClientError: TargetDevice: ml_p3 needs the CUDA backend for its NVIDIA Tesla V100 GPU, which this build of Kiln does not have; compile for its host CPU with TargetPlatform LINUX/X86_64 and CompilerOptions {\"mcpu\": \"broadwell\"}"
            ),
            (
                "jetson_nano",
                "ClientError: TargetDevice: jetson_nano needs the CUDA/TensorRT backend for its NVIDIA Maxwell GPU"
            ),
            ("rasp4b", "ClientError: TargetDevice: rasp4b needs a CPU backend this build of Kiln does not have yet"),
            ("coreml", "ClientError: TargetDevice: coreml needs the Core ML (.mlmodel) backend"),
        ]
        for (device, reason) in cases {
            do {
                _ = try TargetCatalog.target(device: device)
                Issue.record("\(device) compiled")
            } catch let error as KilnError {
                #expect(error.failureReason.hasPrefix(reason), "\(error.failureReason)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }
}

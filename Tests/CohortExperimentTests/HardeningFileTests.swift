@testable import CohortData
@testable import CohortExperiment
@testable import CohortTensor
import CohortTestSupport
import Foundation
import Testing

/// Files made to hurt: crafted headers, configs that bomb the parser, a full disk, a damaged
/// checkpoint. Each is a clear error, never a trap.
@Suite(.serialized) struct HardeningFileTests {
    /// Sizes whose product overflows, negative sizes, offsets past the end: errors, not traps.
    @Test func craftedHeadersAreErrors() throws {
        func safetensors(_ header: String) -> Data {
            var data = Data()
            var length = UInt64(header.utf8.count).littleEndian
            withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
            return data + Data(header.utf8) + Data(count: 16)
        }
        for header in [#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}}"#,
                       #"{"a":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}}"#,
                       #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[9223372036854775800,9223372036854775807]}}"#,
                       #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}}"#] {
            #expect(throws: (any Error).self, "\(header)") { try Safetensors.decode(safetensors(header)) }
        }
        var idx = Data([0, 0, 8, 3])
        for _ in 0..<3 { idx += Data([0xff, 0xff, 0xff, 0xff]) }
        #expect(throws: DataError.self) { try IDX.parse(idx, file: "crafted", expectedDimensions: 3) }
        for shape in ["(4294967296, 4294967296, 4294967296)", "(-3, 2)", "(2, x)"] {
            let header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
            var npy = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
            npy += Data([UInt8(header.utf8.count), 0]) + Data(header.utf8)
            #expect(throws: DataError.self, "\(shape)") { try NPY.parse(npy + Data(count: 8), file: "crafted") }
        }
    }

    @Test func noTrainingSamplesIsAConfigError() throws {
        let dir = temporaryDirectory()
        let x = dir.appendingPathComponent("x.npy"), y = dir.appendingPathComponent("y.npy")
        try NPY.encode(Tensor(shape: [0, 2], [])).write(to: x)
        try NPY.encode(Tensor(shape: [0], [])).write(to: y)
        let empty = "data: {name: npy, x: \(x.path), y: \(y.path)}\nmodel: {input: 2, layers: [{linear: {out: 1}}]}\ntraining: {loss: mse, batch_size: 2}\noptimizer: {lr: 0.1}\n"
        #expect(throws: ConfigError.self) { try Experiment(config: ExperimentConfig.parse(empty, file: "empty.yaml")) }
        let held = "data: {name: inline, x: [[1, 2]], y: [[1]], validation: 0.9}\nmodel: {input: 2, layers: [{linear: {out: 1}}]}\ntraining: {loss: mse, batch_size: 1}\noptimizer: {lr: 0.1}\n"
        do { _ = try Experiment(config: ExperimentConfig.parse(held, file: "held.yaml")); Issue.record("no training samples accepted") } catch let error as ConfigError {
            #expect(error.message.contains("no training samples"))
        }
    }

    /// A nine-line alias bomb and 100,000 nested brackets end in a config error at once (they
    /// ran past 60 s and 1.4 GB, and crashed the parser); a key given twice names both lines.
    @Test func yamlBombsAndDuplicateKeys() throws {
        var bomb = #"a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]"# + "\n"
        for (previous, name) in zip("abcdefgh", "bcdefghi") {
            bomb += "\(name): &\(name) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
        }
        let start = Date()
        #expect(throws: ConfigError.self) { try ExperimentConfig.parse(bomb + "data: *i\n", file: "bomb.yaml") }
        let deep = "x: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: ConfigError.self) { try ExperimentConfig.parse(deep, file: "deep.yaml") }
        #expect(Date().timeIntervalSince(start) < 5)
        do { _ = try ExperimentConfig.parse("seed: 1\nname: a\nseed: 2\n", file: "twice.yaml"); Issue.record("a duplicate key was accepted") } catch {
            #expect(error.line == 3 && error.message.contains("lines 1 and 3"), "\(error)")
        }
    }

    /// A disk that fills up during a run: exit 1 naming the file, and metrics.jsonl stays whole.
    @Test func aFullDiskIsAnErrorNotATrap() throws {
        let mount = temporaryDirectory().appendingPathComponent("small")
        try FileManager.default.createDirectory(at: mount, withIntermediateDirectories: true)
        let mounted = Process()
        mounted.executableURL = URL(fileURLWithPath: "/bin/mount")
        mounted.arguments = ["-t", "tmpfs", "-o", "size=96k", "tmpfs", mount.path]
        mounted.standardError = FileHandle.nullDevice
        try mounted.run()
        mounted.waitUntilExit()
        guard mounted.terminationStatus == 0 else {
            print("skipped aFullDiskIsAnErrorNotATrap: cannot mount a small tmpfs here (needs root)")
            return
        }
        defer {
            let unmount = Process()
            unmount.executableURL = URL(fileURLWithPath: "/bin/umount")
            unmount.arguments = [mount.path]
            try? unmount.run()
            unmount.waitUntilExit()
        }
        let run = mount.appendingPathComponent("run").path
        let result = try runCohort(["train", "configs/xor.yaml", "--workers", "1", "--run-dir", run, "--quiet", "--set", "training.steps=5000"])
        // Whichever file of the run meets the full disk first (metrics.jsonl, the TensorBoard
        // events) is named.
        #expect(result.status == 1 && result.stderr.contains(run + "/") && result.stderr.contains("No space left"), "\(result.stderr)")
        let lines = try String(contentsOfFile: "\(run)/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count > 10 && lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })
    }

    /// One flipped byte in a checkpoint's data: --resume passes over it (to an older one, and
    /// ends with the bytes of an undisturbed run); init_from, eval and predict refuse it.
    @Test func aDamagedCheckpointIsNeverUsed() throws {
        let dir = temporaryDirectory()
        let settings = ["--set", "training.steps=60", "--set", "checkpoint.every_steps=20", "--quiet"]
        let reference = dir.appendingPathComponent("reference").path
        #expect(try runCohort(["train", "configs/quickstart.yaml", "--workers", "1", "--run-dir", reference] + settings).status == 0)
        let run = dir.appendingPathComponent("run").path
        #expect(try runCohort(["train", "configs/quickstart.yaml", "--workers", "1", "--run-dir", run, "--set", "training.steps=40",
                               "--set", "checkpoint.every_steps=20", "--quiet"]).status == 0)
        func flip(_ path: String) throws {
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes[bytes.count - 7] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: path))
        }
        try flip("\(run)/checkpoints/step-40.safetensors")
        let resumed = try runCohort(["train", "--resume", run, "--set", "training.steps=60", "--quiet"])
        #expect(resumed.status == 0 && resumed.stderr.contains("skipping a damaged checkpoint") && resumed.stderr.contains("checksum"),
                "\(resumed.stderr)")
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(reference)/final.safetensors"))
        try flip("\(run)/final.safetensors")
        let eval = try runCohort(["eval", "\(run)/final.safetensors"])
        #expect(eval.status == 2 && eval.stderr.contains("damaged"), "\(eval.stderr)")
        let initFrom = try runCohort(["train", "configs/quickstart.yaml", "--run-dir", dir.appendingPathComponent("init").path,
                                      "--set", "model.init_from=\(run)/final.safetensors"])
        #expect(initFrom.status == 2 && initFrom.stderr.contains("damaged"))
        // Finite-looking but NaN weights are refused as a start too.
        let nan = dir.appendingPathComponent("nan.safetensors").path
        let entries = try Safetensors.read(path: "\(reference)/final.safetensors").entries
        try Safetensors.write(entries.map { Safetensors.Entry($0.name, $0.tensor.map { _ in .nan }) }, to: nan)
        let nanStart = try runCohort(["train", "configs/quickstart.yaml", "--run-dir", dir.appendingPathComponent("nan").path,
                                      "--set", "model.init_from=\(nan)"])
        #expect(nanStart.status == 2 && nanStart.stderr.contains("NaN or infinite"), "\(nanStart.stderr)")
    }
}

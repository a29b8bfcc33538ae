@testable import CohortCluster
import CohortTestSupport
import Foundation
import Testing
@testable import ZeroMQ

@Suite struct CurveKeyTests {
    /// RFC 32's test vector, and a round trip of a key.
    @Test func z85MatchesTheSpecification() throws {
        #expect(Z85.encode([0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]) == "HelloWorld")
        #expect(Z85.decode("HelloWorld") == [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])
        #expect(Z85.decode("Hello") != nil && Z85.decode("Hell") == nil && Z85.decode("Hello\"orld") == nil)
        let pair = try CurveKeyPair.generate()
        let decoded = try #require(Z85.decode(pair.publicKey))
        #expect(pair.publicKey.count == 40 && decoded.count == 32 && Z85.encode(decoded) == pair.publicKey)
        // The public half follows from the secret one (Curve25519).
        #expect(try CurveKeyPair(secretKey: pair.secretKey) == pair)
    }

    @Test func keyFilesRoundTripAndGuardTheSecret() throws {
        let dir = temporaryDirectory()
        let base = dir.appendingPathComponent("keys/alpha").path
        try FileManager.default.createDirectory(atPath: dir.appendingPathComponent("keys").path, withIntermediateDirectories: true)
        let pair = try CurveKeyPair.generate()
        let files = try CurveKeyFile.write(pair, base: base)
        #expect(files.public == base + ".key" && files.secret == base + ".key_secret")
        #expect(try CurveKeyFile.readSecret(files.secret) == pair)
        #expect(try CurveKeyFile.readPublic(files.public) == pair.publicKey)
        #expect(try CurveKeyFile.readAuthorized(dir.appendingPathComponent("keys").path) == [pair.publicKey])
        let mode = try FileManager.default.attributesOfItem(atPath: files.secret)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        // Never overwritten.
        #expect(throws: CurveKeyError.self) { try CurveKeyFile.write(try CurveKeyPair.generate(), base: base) }
        // A secret that others may read is refused, as ssh refuses such keys.
        chmod(files.secret, 0o644)
        #expect(throws: CurveKeyError.self) { try CurveKeyFile.readSecret(files.secret) }
        chmod(files.secret, 0o600)
        // A public key that does not belong to the secret, and a truncated key, are refused.
        let other = try CurveKeyPair.generate()
        var text = try String(contentsOfFile: files.secret, encoding: .utf8)
        text = text.replacingOccurrences(of: pair.publicKey, with: other.publicKey)
        try text.write(toFile: files.secret, atomically: false, encoding: .utf8)
        #expect(throws: CurveKeyError.self) { try CurveKeyFile.readSecret(files.secret) }
        try "public-key = \"\(pair.publicKey.dropLast())\"\n".write(toFile: files.public, atomically: false, encoding: .utf8)
        #expect(throws: CurveKeyError.self) { try CurveKeyFile.readPublic(files.public) }
        #expect(throws: CurveKeyError.self) { try CurveKeyFile.readAuthorized(dir.appendingPathComponent("none").path) }
    }

    @Test func loopbackEndpoints() {
        for endpoint in ["ipc:///tmp/x.ipc", "tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:5555", "inproc://a"] {
            #expect(Endpoints.isLoopback(endpoint), "\(endpoint)")
        }
        for endpoint in ["tcp://0.0.0.0:5555", "tcp://10.0.0.5:5555", "tcp://*:5555", "tcp://[::]:5555", "tcp://eth0:5555"] {
            #expect(!Endpoints.isLoopback(endpoint), "\(endpoint)")
        }
    }
}

@Suite(.serialized) struct CurveRunTests {
    /// Training over tcp with CURVE: local workers get keys of the run, an outside worker with a
    /// key not on the allow-list is refused (exit 2, and the coordinator says so), a worker
    /// without CURVE never joins, and the weights are those of the same run over plain ipc.
    @Test func curveRunRefusesStrangersAndChangesNothing() throws {
        let dir = temporaryDirectory()
        let keys = dir.appendingPathComponent("keys").path
        for name in ["coordinator", "workers/friend", "stranger"] {
            let made = try runCohort(["keygen", "\(keys)/\(name)"])
            #expect(made.status == 0, "\(made.stderr)")
        }
        let settings = ["--set", "training.steps=40", "--set", "cluster.threads_per_worker=1", "--set", "evaluation.at_end=false"]
        let reference = dir.appendingPathComponent("plain").path
        let plain = try runCohort(["train", "configs/mnist-mlp.yaml", "--workers", "2", "--run-dir", reference, "--quiet"] + settings)
        #expect(plain.status == 0, "\(plain.stderr)")

        // One local worker plus the authorized outside one; the run waits for both.
        let port = 20000 + Int(getpid() % 20000)
        let endpoint = "tcp://127.0.0.1:\(port)"
        let run = dir.appendingPathComponent("curve").path
        let coordinator = try startCohort(["train", "configs/mnist-mlp.yaml", "--workers", "1", "--bind", endpoint, "--run-dir", run,
                                           "--secret-key", "\(keys)/coordinator.key_secret", "--authorized-keys", "\(keys)/workers",
                                           "--set", "cluster.min_workers=2"] + settings,
                                          log: dir.appendingPathComponent("coordinator.log"))
        let stranger = try runCohort(["worker", "--connect", endpoint, "--server-key", "\(keys)/coordinator.key",
                                      "--secret-key", "\(keys)/stranger.key_secret", "--timeout", "20"])
        let unencrypted = try runCohort(["worker", "--connect", endpoint, "--timeout", "2"])
        let friend = try runCohort(["worker", "--connect", endpoint, "--config", "configs/mnist-mlp.yaml", "--server-key",
                                    "\(keys)/coordinator.key", "--secret-key", "\(keys)/workers/friend.key_secret", "--timeout", "20"])
        coordinator.waitUntilExit()
        let log = (try? String(contentsOf: dir.appendingPathComponent("coordinator.log"), encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 0, "\(log)")
        #expect(stranger.status == 2 && stranger.stderr.contains("refused this worker's CURVE key"), "\(stranger.stderr)")
        #expect(unencrypted.status == 1 && unencrypted.stderr.contains("may require CURVE"), "\(unencrypted.stderr)")
        #expect(friend.status == 0, "\(friend.stderr)")
        #expect(log.contains("is not authorized") && log.contains("failed the CURVE handshake"), "\(log)")
        #expect(try tensorBytes("\(run)/final.safetensors") == tensorBytes("\(reference)/final.safetensors"))
    }

    /// A non-loopback bind without keys is refused before anything starts, unless --insecure.
    @Test func anOpenBindNeedsCurveOrInsecure() throws {
        let run = temporaryDirectory().appendingPathComponent("run").path
        let refused = try runCohort(["train", "configs/xor.yaml", "--bind", "tcp://0.0.0.0:0", "--workers", "1", "--run-dir", run])
        #expect(refused.status == 2 && refused.stderr.contains("--insecure"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: run))
        let half = try runCohort(["train", "configs/xor.yaml", "--set", "cluster.secret_key=configs/xor.yaml", "--run-dir", run])
        #expect(half.status == 2 && half.stderr.contains("cluster.authorized_keys"), "\(half.stderr)")
        let allowed = try runCohort(["train", "configs/xor.yaml", "--bind", "tcp://0.0.0.0:0", "--workers", "1", "--run-dir", run,
                                     "--insecure", "--quiet", "--set", "training.steps=5"])
        #expect(allowed.status == 0, "\(allowed.stderr)")
    }
}

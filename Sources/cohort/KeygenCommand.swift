import ArgumentParser
import Foundation
import ZeroMQ

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a CURVE key pair for encrypted, authenticated training over a network.",
        discussion: """
        Writes NAME.key (the public key, to hand out) and NAME.key_secret (both keys, \
        readable by you only), in ZeroMQ's certificate format. Never overwrites.

        Example, a coordinator and two LAN workers:
          cohort keygen keys/coordinator
          cohort keygen keys/workers/alpha    # on alpha; copy alpha.key over
          cohort keygen keys/workers/beta
          cohort train configs/mnist-mlp.yaml --bind tcp://0.0.0.0:5555 \\
              --workers 0 --set cluster.min_workers=2 \\
              --secret-key keys/coordinator.key_secret --authorized-keys keys/workers
          cohort worker --connect tcp://HOST:5555 \\
              --server-key keys/coordinator.key \\
              --secret-key keys/workers/alpha.key_secret
        """
    )

    @Argument(help: "Path and name of the key files, without suffix.")
    var name: String

    func run() throws {
        let directory = (name as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        let pair = try CurveKeyPair.generate()
        let files: (public: String, secret: String)
        do { files = try CurveKeyFile.write(pair, base: name) } catch {
            stderrLine("cohort keygen: \(error)")
            throw ExitCode(ExitStatus.usage)
        }
        print("public key \(pair.publicKey)")
        print("wrote \(files.public) (share it) and \(files.secret) (keep it private)")
    }
}

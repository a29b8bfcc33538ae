import ArgumentParser
import CohortData

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Fetch datasets.",
        discussion: """
        Examples:
          cohort data mnist --to data/mnist
          cohort data mnist --fashion --to data/fashion-mnist
        Then point a config at the directory (data.path) or set COHORT_DATA to it.
        """,
        subcommands: [FetchMNIST.self]
    )
}

struct FetchMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist",
        abstract: "Download MNIST (or Fashion-MNIST) from public mirrors and check the MD5 of each file."
    )

    @Option(help: "Directory to put the four .gz files in.")
    var to: String

    @Flag(help: "Fashion-MNIST instead of MNIST.")
    var fashion = false

    @Option(help: "A mirror base URL to try first (repeatable); file:// works too.")
    var mirror: [String] = []

    func run() throws {
        let mirrors = mirror + (fashion ? MNISTDownload.fashionMirrors : MNISTDownload.mnistMirrors)
        LogSetup.bootstrap(.info)
        try MNISTDownload.fetch(to: to, mirrors: mirrors,
                                checksums: fashion ? MNISTDownload.fashionChecksums : MNISTDownload.mnistChecksums)
        stdoutLine("done: \(to)")
    }
}

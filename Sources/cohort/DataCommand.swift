import ArgumentParser
import CohortData
import Foundation

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Fetch datasets.",
        discussion: """
        Examples:
          cohort data mnist                  # into ~/.cache/cohort/mnist, where configs find it
          cohort data mnist --fashion        # into ~/.cache/cohort/fashion-mnist
          cohort data mnist --to data/mnist --mirror /media/usb/mnist
        Configs with data.name: mnist find the files in $COHORT_DATA, data/mnist beside the \
        config, or the cache directory. COHORT_MNIST_MIRRORS (space-separated URLs or \
        directories) replaces the public mirrors. Exit status 1 when no mirror gives a file \
        whose MD5 checks out.
        """,
        subcommands: [FetchMNIST.self]
    )
}

struct FetchMNIST: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnist",
        abstract: "Download MNIST (or Fashion-MNIST) from public mirrors and check the MD5 of each file."
    )

    @Option(help: "Directory to put the four .gz files in (default: ~/.cache/cohort/mnist or fashion-mnist).")
    var to: String?

    @Flag(help: "Fashion-MNIST instead of MNIST.")
    var fashion = false

    @Option(help: "A mirror to try first (repeatable): a base URL (https://, file://) or a local directory.")
    var mirror: [String] = []

    func run() throws {
        let target = to ?? MNISTSearch.cacheDirectory(fashion: fashion)
        // COHORT_MNIST_MIRRORS (space-separated) replaces the public mirrors, for a site's own.
        let site = ProcessInfo.processInfo.environment["COHORT_MNIST_MIRRORS"]?.split(separator: " ").map(String.init)
        let mirrors = mirror + (site ?? (fashion ? MNISTDownload.fashionMirrors : MNISTDownload.mnistMirrors))
        LogSetup.bootstrap(.info)
        do {
            try MNISTDownload.fetch(to: target, mirrors: mirrors,
                                    checksums: fashion ? MNISTDownload.fashionChecksums : MNISTDownload.mnistChecksums)
        } catch let error as DownloadError {
            stderrLine("cohort data: \(error)")
            throw ExitCode(ExitStatus.runtimeFailure)
        }
        stdoutLine("done: \(target)")
    }
}

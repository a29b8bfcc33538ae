import Foundation
import Logging
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `cohort data mnist --to DIR`: fetches the four MNIST (or Fashion-MNIST) files from public
/// mirrors, checks each against its published MD5 and decodes it before keeping it.
package enum MNISTDownload {
    package static let files = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

    /// The MD5 sums the mirrors publish (torchvision lists the same).
    package static let mnistChecksums = [
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    ]
    package static let fashionChecksums = [
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    ]
    package static let mnistMirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                                      "https://storage.googleapis.com/cvdf-datasets/mnist/"]
    package static let fashionMirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]

    /// Downloads into `directory`, trying each mirror in turn. A file already present with the
    /// right checksum is kept. Nothing is written unless its checksum and contents check out.
    package static func fetch(to directory: String, mirrors: [String], checksums: [String: String],
                             logger: Logger = Logger(label: "cohort.data")) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw DataError(file: directory, "cannot create the directory: \(error.localizedDescription)")
        }
        for file in files {
            let target = "\(directory)/\(file)"
            let expected = checksums[file]!
            if let existing = FileManager.default.contents(atPath: target), MD5.hexDigest(existing) == expected {
                logger.info("\(file): present, checksum ok")
                continue
            }
            var failures: [String] = []
            var stored = false
            for mirror in mirrors {
                let url = Self.url(of: file, at: mirror)
                logger.info("\(file): fetching \(url.absoluteString)")
                let data: Data
                do { data = try Data(contentsOf: url) } catch {
                    failures.append("\(url.absoluteString): \(Self.reason(error, url: url))")
                    continue
                }
                let digest = MD5.hexDigest(data)
                guard digest == expected else {
                    failures.append("\(url.absoluteString): MD5 \(digest), expected \(expected)")
                    continue
                }
                _ = try IDX.parse(try Gzip.decompress(data, file: url.absoluteString), file: url.absoluteString,
                                  expectedDimensions: file.contains("images") ? 3 : 1)
                do { try AtomicFile.write(data, to: target) } catch {
                    throw DataError(file: target, "cannot write: \(error)")
                }
                logger.info("\(file): \(data.count) bytes, checksum ok")
                stored = true
                break
            }
            guard stored else { throw DownloadError(file: file, directory: directory, failures: failures) }
        }
    }

    /// The file at a mirror: a URL (https://, file://) or a local directory.
    static func url(of file: String, at mirror: String) -> URL {
        if mirror.contains("://"), let base = URL(string: mirror.hasSuffix("/") ? mirror : mirror + "/") {
            return base.appendingPathComponent(file)
        }
        return URL(fileURLWithPath: mirror).appendingPathComponent(file)
    }

    /// Why a fetch failed, in words: Foundation's own ("NSCocoaErrorDomain error 256") say little.
    static func reason(_ error: Error, url: URL) -> String {
        if url.isFileURL {
            return FileManager.default.fileExists(atPath: url.path) ? "cannot read it" : "no such file"
        }
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSURLErrorDomain {
            return "cannot reach \(url.host ?? "the host") (\(underlying.localizedDescription)); is there a network?"
        }
        if nsError.domain == NSURLErrorDomain { return "cannot reach \(url.host ?? "the host") (\(nsError.localizedDescription))" }
        return "cannot download it (no network, or the mirror refused)"
    }
}

/// No mirror gave a good copy of a file: every attempt, and how to place the files by hand.
package struct DownloadError: Error, CustomStringConvertible {
    package var file: String
    package var directory: String
    package var failures: [String]

    package var description: String {
        "could not get \(file):\n  " + failures.joined(separator: "\n  ") + "\n" +
            "Without a network, copy the four files (\(MNISTDownload.files.joined(separator: ", "))) into \(directory) " +
            "by hand, or give --mirror DIRECTORY where they are."
    }
}

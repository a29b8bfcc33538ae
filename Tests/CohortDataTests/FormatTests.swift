@testable import CohortData
@testable import CohortTensor
import CohortTestSupport
import Foundation
import Testing

func temporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-data-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct MNISTTests {
    @Test func realMNISTHasTheKnownShapeAndClassCounts() throws {
        // The full set, or the subset shipped in data/mnist-subset (its README gives its counts).
        let expected = MNISTExpectations.current
        let train = try MNIST.load(directory: mnistDirectory.path, split: .train)
        #expect(train.inputs.shape == [expected.trainCount, 1, 28, 28])
        #expect(train.classCounts() == expected.trainClassCounts)
        #expect(train.inputs.scalars.max() == 255)
        let test = try MNIST.load(directory: mnistDirectory.path, split: .test)
        #expect(test.count == expected.testCount && test.classCounts().reduce(0, +) == expected.testCount)
        #expect(train.fingerprint.count == 64 && train.fingerprint != test.fingerprint)
    }

    func copyMNIST(into dir: URL, swapLabels: Bool = false) throws {
        for file in try FileManager.default.contentsOfDirectory(atPath: mnistDirectory.path) {
            var target = file
            if swapLabels && file.hasPrefix("train-labels") { continue }
            if swapLabels && file.hasPrefix("t10k-labels") { target = file.replacingOccurrences(of: "t10k", with: "train") }
            try FileManager.default.copyItem(at: mnistDirectory.appendingPathComponent(file), to: dir.appendingPathComponent(target))
        }
    }

    func loadError(_ dir: URL, _ split: MNIST.Split = .train) -> DataError? {
        do { _ = try MNIST.load(directory: dir.path, split: split); return nil } catch { return error }
    }

    @Test func badFilesNameTheFileAndTheProblem() throws {
        // Missing file.
        let empty = temporaryDirectory()
        #expect(loadError(empty)?.file.hasSuffix("train-images-idx3-ubyte.gz") == true)

        // Mismatched counts: the 10,000 test labels beside the 60,000 training images.
        let swapped = temporaryDirectory()
        try copyMNIST(into: swapped, swapLabels: true)
        let mismatch = try #require(loadError(swapped))
        let expected = MNISTExpectations.current
        #expect(mismatch.message.contains("\(expected.testCount) labels for \(expected.trainCount) images"))

        // Truncated gzip, corrupt gzip, wrong magic, truncated raw file.
        let labels = try Data(contentsOf: mnistDirectory.appendingPathComponent("t10k-labels-idx1-ubyte.gz"))
        let images = try Data(contentsOf: mnistDirectory.appendingPathComponent("t10k-images-idx3-ubyte.gz"))
        let raw = try Gzip.decompress(labels, file: "labels")
        let cases: [(String, Data, String)] = [
            ("truncated gzip", labels.prefix(labels.count / 2), "truncated"),
            ("corrupt gzip", { var d = labels; for i in 100..<140 { d[i] ^= 0x5a }; return d }(), "corrupt"),
            ("wrong magic", { var d = raw; d[2] = 0x09; return d }(), "element type"),
            ("not IDX", Data("hello world, not an idx file".utf8), "wrong magic"),
            ("truncated raw", raw.prefix(raw.count - 10), "truncated"),
        ]
        for (what, labelData, expected) in cases {
            let dir = temporaryDirectory()
            try images.write(to: dir.appendingPathComponent("t10k-images-idx3-ubyte.gz"))
            try labelData.write(to: dir.appendingPathComponent("t10k-labels-idx1-ubyte.gz"))
            let error = try #require(loadError(dir, .test), "\(what) was accepted")
            #expect(error.file.hasSuffix("t10k-labels-idx1-ubyte.gz"), "\(what): \(error)")
            #expect(error.message.contains(expected), "\(what): \(error)")
        }
    }

    @Test func downloaderChecksChecksumsAndKeepsOnlyGoodFiles() throws {
        // The test copies were recompressed (or cut, for the subset), so their MD5s differ from
        // the published ones: a mirror serving them must be refused, and nothing may be left behind.
        // (A failed download is a DownloadError, which the CLI reports with exit status 1.)
        let target = temporaryDirectory().appendingPathComponent("mnist")
        #expect(throws: DownloadError.self) {
            try MNISTDownload.fetch(to: target.path, mirrors: [mnistDirectory.absoluteString],
                                    checksums: MNISTDownload.mnistChecksums)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.path).isEmpty)
        // With the checksums those files really have, every file is fetched, checked and decoded.
        var sums: [String: String] = [:]
        for file in MNISTDownload.files {
            sums[file] = MD5.hexDigest(try Data(contentsOf: mnistDirectory.appendingPathComponent(file)))
        }
        try MNISTDownload.fetch(to: target.path, mirrors: ["file:///nonexistent/", mnistDirectory.absoluteString], checksums: sums)
        #expect(try MNIST.load(directory: target.path, split: .test).count == MNISTExpectations.current.testCount)
    }
}

@Suite struct HashTests {
    @Test func sha256KnownAnswers() {
        func hex(_ s: String) -> String { var h = SHA256(); h.update(Data(s.utf8)); return h.hexDigest() }
        #expect(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var million = SHA256()
        let chunk = Data(repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { million.update(chunk.prefix(333)); million.update(chunk.suffix(667)) }
        #expect(million.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func md5KnownAnswers() {
        #expect(MD5.hexDigest(Data()) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(MD5.hexDigest(Data("abc".utf8)) == "900150983cd24fb0d6963f7d28e17f72")
        #expect(MD5.hexDigest(Data("The quick brown fox jumps over the lazy dog".utf8)) == "9e107d9d372bb6826bd81d3542a419d6")
    }
}

@Suite struct CSVTests {
    func write(_ text: String) throws -> String {
        let path = temporaryDirectory().appendingPathComponent("data.csv").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func loadsFeaturesAndLabelByName() throws {
        let path = try write("x1,label,x2\n0.5,1,2\n-1,0,3.25\n\"4\",2,5\n")
        let d = try CSVDataset.load(path: path, labels: ["label"])
        #expect(d.inputs == Tensor([[0.5, 2], [-1, 3.25], [4, 5]]))
        #expect(d.targets.scalars == [1, 0, 2] && d.classes == 3)
        let multi = try CSVDataset.load(path: try write("a,b,f\n1,0,0.5\n0,1,1.5\n"), labels: ["a", "b"])
        #expect(multi.targets == Tensor([[1, 0], [0, 1]]) && multi.inputs.shape == [2, 1])
    }

    @Test func badCellsNameTheLine() throws {
        func error(_ text: String, labels: [String] = ["y"]) throws -> DataError {
            let path = try write(text)
            do { _ = try CSVDataset.load(path: path, labels: labels) } catch { return error }
            Issue.record("accepted: \(text)")
            return DataError(file: "", "")
        }
        let cell = try error("a,y\n1,0\n2,1\nthree,0\n")
        #expect(cell.line == 4 && cell.message.contains("'three' is not a number") && cell.message.contains("column 'a'"))
        let ragged = try error("a,y\n1,0\n2\n")
        #expect(ragged.line == 3 && ragged.message.contains("1 fields"))
        let column = try error("a,b\n1,0\n")
        #expect(column.line == 1 && column.message.contains("no column named 'y'"))
        let nan = try error("a,y\nnan,1\n")
        #expect(nan.line == 2)
        #expect(throws: DataError.self) { try CSVDataset.load(path: "/no/such.csv", labels: ["y"]) }
    }
}

@Suite struct NPYTests {
    func npy(descr: String, shape: String, fortran: Bool = false, payload: [UInt8]) -> Data {
        var header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count), 0])
        d.append(Data(header.utf8)); d.append(contentsOf: payload)
        return d
    }

    @Test func readsTheCommonDtypes() throws {
        let f4 = Tensor([[1.5, -2], [3, 4.25]])
        #expect(try NPY.parse(NPY.encode(f4), file: "a.npy") == f4)
        let f8 = [2.5, -1.0].flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        #expect(try NPY.parse(npy(descr: "<f8", shape: "(2,)", payload: f8), file: "b.npy").scalars == [2.5, -1])
        #expect(try NPY.parse(npy(descr: "|u1", shape: "(1, 3)", payload: [0, 7, 255]), file: "c.npy") == Tensor([[0, 7, 255]]))
        let i8 = [Int64(3), -4].flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        #expect(try NPY.parse(npy(descr: "<i8", shape: "(2,)", payload: i8), file: "d.npy").scalars == [3, -4])
    }

    @Test func rejectsWhatItCannotRead() {
        #expect(throws: DataError.self) { try NPY.parse(Data("not numpy".utf8), file: "x") }
        #expect(throws: DataError.self) { try NPY.parse(npy(descr: "<f4", shape: "(2,)", fortran: true, payload: Array(repeating: 0, count: 8)), file: "x") }
        #expect(throws: DataError.self) { try NPY.parse(npy(descr: "<f4", shape: "(3,)", payload: Array(repeating: 0, count: 8)), file: "x") }
        #expect(throws: DataError.self) { try NPY.parse(npy(descr: "<c8", shape: "(1,)", payload: Array(repeating: 0, count: 8)), file: "x") }
    }
}

import CohortTensor
import Foundation

/// Where a run's data comes from and how it is prepared: the `data` section of a config.
package struct DataSpec: Sendable {
    package enum Source: Sendable {
        case synthetic(SyntheticDataset, samples: Int, noise: Float, classes: Int, length: Int)
        case inline(inputs: Tensor, targets: Tensor)
        /// The four IDX files in a directory; `fashion` only changes the name.
        case mnist(directory: String, fashion: Bool)
        case csv(train: String, test: String?, labels: [String])
        case npy(x: String, y: String, testX: String?, testY: String?)
    }

    package var source: Source
    package var normalization: Normalization
    /// Hold out this fraction of the training set (seeded) for evaluation.
    package var validationFraction: Double?
    /// Use only the first N training samples (quick experiments).
    package var limit: Int?
    /// Turn class indices into one-hot rows.
    package var oneHot: Bool

    package init(source: Source, normalization: Normalization, validationFraction: Double? = nil, limit: Int? = nil, oneHot: Bool = false) {
        self.source = source; self.normalization = normalization; self.validationFraction = validationFraction
        self.limit = limit; self.oneHot = oneHot
    }

    /// The file a data error should name: the one holding the targets (inline and synthetic data
    /// come from the config itself, `configFile`).
    package func targetsFile(configFile: String) -> String {
        switch source {
        case .synthetic, .inline: configFile
        case .mnist(let directory, _): "\(directory)/train-labels-idx1-ubyte.gz"
        case .csv(let train, _, _): train
        case .npy(_, let y, _, _): y
        }
    }

    /// Loads the training set and the evaluation set (validation split, else the source's test set).
    package func load(seed: UInt64) throws(DataError) -> (train: Dataset, evaluation: Dataset?) {
        var (train, test) = try loadRaw(seed: seed)
        if let limit, limit < train.count { train = train.subset(Array(0..<limit), name: train.name) }
        var evaluation = test
        if let fraction = validationFraction, fraction > 0 {
            (train, evaluation) = train.split(validationFraction: fraction, seed: seed)
        }
        let normalizer = Normalizer(fitting: normalization, to: train)
        train = normalizer.apply(train)
        evaluation = evaluation.map(normalizer.apply)
        if oneHot { train = train.oneHot(); evaluation = evaluation?.oneHot() }
        return (train, evaluation)
    }

    /// The training set as its source gives it (before normalization), with the same limit and
    /// validation split as training used: what a normalizer is fitted to.
    package func loadRawTraining(seed: UInt64) throws(DataError) -> Dataset {
        var (train, _) = try loadRaw(seed: seed)
        if let limit, limit < train.count { train = train.subset(Array(0..<limit), name: train.name) }
        if let fraction = validationFraction, fraction > 0 { train = train.split(validationFraction: fraction, seed: seed).train }
        return train
    }

    func loadRaw(seed: UInt64) throws(DataError) -> (Dataset, Dataset?) {
        switch source {
        case let .synthetic(kind, samples, noise, classes, length):
            return (kind.generate(samples: samples, noise: noise, classes: classes, length: length, seed: seed), nil)
        case let .inline(inputs, targets):
            return (Dataset(name: "inline", inputs: inputs, targets: targets), nil)
        case let .mnist(directory, fashion):
            let name = fashion ? "fashion-mnist" : "mnist"
            return (try MNIST.load(directory: directory, split: .train, name: name),
                    try MNIST.load(directory: directory, split: .test, name: name))
        case let .csv(trainPath, testPath, labels):
            var train = try CSVDataset.load(path: trainPath, labels: labels)
            var test = try testPath.map { p throws(DataError) in try CSVDataset.load(path: p, labels: labels) }
            if let t = test, t.sampleShape != train.sampleShape {
                throw DataError(file: testPath!, "has \(t.sampleShape) features, the training file \(train.sampleShape)")
            }
            // A class missing from one file must not shrink the output layer the other needs.
            if let a = train.classes, let b = test?.classes { train.classes = max(a, b); test?.classes = max(a, b) }
            return (train, test)
        case let .npy(xPath, yPath, testX, testY):
            let train = try npyDataset(xPath, yPath)
            let test = try testX.flatMap { x throws(DataError) in try testY.map { y throws(DataError) in try npyDataset(x, y) } }
            return (train, test)
        }
    }

    func npyDataset(_ xPath: String, _ yPath: String) throws(DataError) -> Dataset {
        let x = try NPY.read(path: xPath), y = try NPY.read(path: yPath)
        guard x.shape.first == y.shape.first, x.rank >= 1 else {
            throw DataError(file: yPath, "has \(y.shape.first ?? 0) targets for \(x.shape.first ?? 0) samples in \(xPath)")
        }
        let isClasses = y.rank == 1 && y.scalars.allSatisfy { $0 >= 0 && $0 == $0.rounded() }
        return Dataset(name: URL(fileURLWithPath: xPath).deletingPathExtension().lastPathComponent, inputs: x, targets: y,
                       classes: isClasses ? Int(y.scalars.max() ?? 0) + 1 : nil)
    }
}

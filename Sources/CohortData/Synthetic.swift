import CohortTensor
import Foundation

/// Built-in datasets generated from the seed, for learning and for `make run` without a download.
public enum SyntheticDataset: String, Sendable, CaseIterable {
    /// The four XOR points of lecture 002, repeated; targets 0/1.
    case xor
    /// Two interleaved spirals in the plane, two classes (Lang & Witbrock's benchmark).
    case spirals
    /// Two concentric circles, two classes.
    case circles
    /// Gaussian blobs, one per class, around evenly spaced centres.
    case blobs

    /// Generates `samples` points; `noise` is the standard deviation of Gaussian jitter.
    public func generate(samples: Int, noise: Float, classes: Int = 2, seed: UInt64) -> Dataset {
        let rng = Philox(seed: seed)
        let stream = RandomStream(purpose: RandomStream.data, a: UInt32(SyntheticDataset.allCases.firstIndex(of: self)!))
        var x = [Float](repeating: 0, count: samples * 2)
        var y = [Float](repeating: 0, count: samples)
        // Two normals per sample for jitter, one uniform for position along the curve.
        func jitter(_ i: Int, _ k: UInt32) -> Float { noise * rng.normal(stream, UInt32(i) &* 4 &+ k) }
        func uniform(_ i: Int) -> Float { rng.uniform(stream, UInt32(i) &* 4 &+ 3) }
        for i in 0..<samples {
            switch self {
            case .xor:
                let a = Float(i & 1), b = Float((i >> 1) & 1)
                x[2 * i] = a + jitter(i, 0); x[2 * i + 1] = b + jitter(i, 1)
                y[i] = a != b ? 1 : 0
            case .spirals:
                let label = i % 2
                let t = uniform(i)
                let r = 0.1 + 0.9 * t
                let angle = Double(t) * 3 * Double.pi + Double(label) * Double.pi
                x[2 * i] = r * Float(cos(angle)) + jitter(i, 0)
                x[2 * i + 1] = r * Float(sin(angle)) + jitter(i, 1)
                y[i] = Float(label)
            case .circles:
                let label = i % 2
                let angle = Double(uniform(i)) * 2 * Double.pi
                let r: Float = label == 0 ? 1 : 0.5
                x[2 * i] = r * Float(cos(angle)) + jitter(i, 0)
                x[2 * i + 1] = r * Float(sin(angle)) + jitter(i, 1)
                y[i] = Float(label)
            case .blobs:
                let label = i % classes
                let angle = 2 * Double.pi * Double(label) / Double(classes)
                x[2 * i] = 2 * Float(cos(angle)) + jitter(i, 0)
                x[2 * i + 1] = 2 * Float(sin(angle)) + jitter(i, 1)
                y[i] = Float(label)
            }
        }
        return Dataset(name: rawValue, inputs: Tensor(shape: [samples, 2], x), targets: Tensor(shape: [samples], y),
                       classes: self == .blobs ? classes : 2)
    }
}

import Foundation

/// An elementwise function with its derivative, written in terms of the input x and output y
/// (whichever is cheaper: σ' = y(1 − y), tanh' = 1 − y², relu' = [x > 0]).
public protocol ElementwiseFunction {
    static func value(_ x: Float) -> Float
    static func derivative(x: Float, y: Float) -> Float
    /// Eight lanes at a time. By default each lane calls the scalar form; a function that
    /// overrides these must give the same bits.
    static func value(_ x: SIMD8<Float>) -> SIMD8<Float>
    static func derivative(x: SIMD8<Float>, y: SIMD8<Float>) -> SIMD8<Float>
}

extension ElementwiseFunction {
    @inlinable public static func value(_ x: SIMD8<Float>) -> SIMD8<Float> {
        var y = x
        for l in 0..<8 { y[l] = value(x[l]) }
        return y
    }

    @inlinable public static func derivative(x: SIMD8<Float>, y: SIMD8<Float>) -> SIMD8<Float> {
        var d = x
        for l in 0..<8 { d[l] = derivative(x: x[l], y: y[l]) }
        return d
    }
}

extension Variable {
    /// Applies an elementwise function; generic so each function compiles to its own tight loop.
    @inlinable
    public func apply<F: ElementwiseFunction>(_: F.Type) -> Variable {
        let x = value, n = x.count
        var y = Tensor(uninitializedShape: x.shape)
        Lanes.map(n, into: y.mutablePointer, x.pointer) { F.value($0) }
        let output = y
        return tape.record(output, inputs: [self]) { g, _ in
            var dx = Tensor(uninitializedShape: x.shape)
            let pd = dx.mutablePointer, pg = g.pointer, px = x.pointer, py = output.pointer
            for i in stride(from: 0, to: n, by: 8) {
                let k = Swift.min(8, n - i)
                Lanes.store(Lanes.load(pg, i, k) * F.derivative(x: Lanes.load(px, i, k), y: Lanes.load(py, i, k)), pd, i, k)
            }
            withExtendedLifetime((x, output, g)) {}
            return [dx]
        }
    }

    public func sigmoid() -> Variable { apply(Sigmoid.self) }
    public func tanh() -> Variable { apply(Tanh.self) }
    public func relu() -> Variable { apply(ReLU.self) }
    public func softplus() -> Variable { apply(Softplus.self) }
    public func hardThreshold() -> Variable { apply(HardThreshold.self) }
    public func sign() -> Variable { apply(Sign.self) }
}

/// σ(z) = 1 / (1 + e^−z), σ'(z) = σ(z)(1 − σ(z)).
public enum Sigmoid: ElementwiseFunction {
    @inlinable public static func value(_ x: Float) -> Float {
        // Split by sign so e^|x| never overflows.
        if x >= 0 { return 1 / (1 + Foundation.exp(-x)) }
        let e = Foundation.exp(x)
        return e / (1 + e)
    }
    @inlinable public static func derivative(x: Float, y: Float) -> Float { y * (1 - y) }
}

/// tanh(z) = (e^z − e^−z)/(e^z + e^−z), tanh'(z) = 1 − tanh²(z).
public enum Tanh: ElementwiseFunction {
    @inlinable public static func value(_ x: Float) -> Float { Foundation.tanh(x) }
    @inlinable public static func derivative(x: Float, y: Float) -> Float { 1 - y * y }
}

/// ReLU(z) = max(0, z); derivative 1 for z > 0 and 0 otherwise (PyTorch's choice at 0).
public enum ReLU: ElementwiseFunction {
    @inlinable public static func value(_ x: Float) -> Float { x > 0 ? x : 0 }
    @inlinable public static func derivative(x: Float, y: Float) -> Float { x > 0 ? 1 : 0 }
    // The same selections, eight lanes at a time (NaN and −0 give 0, as above).
    @inlinable public static func value(_ x: SIMD8<Float>) -> SIMD8<Float> { SIMD8(repeating: 0).replacing(with: x, where: x .> 0) }
    @inlinable public static func derivative(x: SIMD8<Float>, y: SIMD8<Float>) -> SIMD8<Float> {
        SIMD8(repeating: 0).replacing(with: 1, where: x .> 0)
    }
}

/// Soft ReLU, softplus(z) = log(1 + e^z); derivative σ(z).
public enum Softplus: ElementwiseFunction {
    @inlinable public static func value(_ x: Float) -> Float {
        // log(1 + e^x) = max(x, 0) + log1p(e^−|x|), finite for every x.
        max(x, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x)))
    }
    @inlinable public static func derivative(x: Float, y: Float) -> Float { Sigmoid.value(x) }
}

/// The hard threshold: 1 if z > 0 else 0. Its true derivative is 0 almost everywhere, so it uses
/// the straight-through gradient of the perceptron rule (lecture 002): d step/dz taken as 1.
public enum HardThreshold: ElementwiseFunction {
    @inlinable public static func value(_ x: Float) -> Float { x > 0 ? 1 : 0 }
    @inlinable public static func derivative(x: Float, y: Float) -> Float { 1 }
}

/// Sgn(z) = +1 if z > 0 else −1, as the perceptron predicts; straight-through gradient 1.
public enum Sign: ElementwiseFunction {
    @inlinable public static func value(_ x: Float) -> Float { x > 0 ? 1 : -1 }
    @inlinable public static func derivative(x: Float, y: Float) -> Float { 1 }
}

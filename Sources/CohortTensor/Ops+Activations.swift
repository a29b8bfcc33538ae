import Foundation

/// An elementwise function with its derivative, written in terms of the input x and output y
/// (whichever is cheaper: σ' = y(1 − y), tanh' = 1 − y², relu' = [x > 0]).
public protocol ElementwiseFunction {
    static func value(_ x: Float) -> Float
    static func derivative(x: Float, y: Float) -> Float
}

extension Variable {
    /// Applies an elementwise function; generic so each function compiles to its own tight loop.
    @inlinable
    public func apply<F: ElementwiseFunction>(_: F.Type) -> Variable {
        let x = value
        let y = x.map(F.value)
        return tape.record(y, inputs: [self]) { g, _ in
            var dx = Tensor(uninitializedShape: x.shape)
            let n = x.count
            x.withUnsafeBufferPointer { px in y.withUnsafeBufferPointer { py in g.withUnsafeBufferPointer { pg in
                dx.withUnsafeMutableBufferPointer { d in
                    for i in 0..<n { d[i] = pg[i] * F.derivative(x: px[i], y: py[i]) }
                }
            } } }
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

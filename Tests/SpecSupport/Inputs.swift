import GSLOracle
import TensorCore

/// Reproducible test inputs drawn from GSL's generator (independent of the library's RNG).
public enum Inputs {
    public static func matrix(rows: Int, cols: Int, seed: UInt, range: ClosedRange<Float> = -1...1) -> Matrix {
        let rng = GSLRandom(seed: seed)
        return try! Matrix(rows: rows, cols: cols, storage: rng.floats(rows * cols, in: range.lowerBound, range.upperBound))
    }
}

extension Array where Element == Float {
    public var doubles: [Double] { map(Double.init) }
}

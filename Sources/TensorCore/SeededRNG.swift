/// A small, fast, reproducible generator (xoshiro256**, seeded through SplitMix64).
///
/// Every random choice in the suite — weight initialization, sampling, shuffling, test inputs —
/// goes through this type with an explicit seed, so runs are reproducible across machines.
public struct SeededRNG: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64
    public let seed: UInt64

    public init(seed: UInt64) {
        self.seed = seed
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(); s1 = splitmix(); s2 = splitmix(); s3 = splitmix()
    }

    @inlinable
    static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = SeededRNG.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = SeededRNG.rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * Float(uniform()) }

    /// Standard normal (Box–Muller, one value per call).
    public mutating func normal() -> Double {
        var u1 = uniform()
        while u1 <= 0 { u1 = uniform() }
        let u2 = uniform()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }

    /// A `rows × cols` matrix with entries uniform in [lo, hi).
    public mutating func matrix(rows: Int, cols: Int, in range: ClosedRange<Float> = -1...1) -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        for i in m.storage.indices { m.storage[i] = uniform(range.lowerBound, range.upperBound) }
        return m
    }

    /// A `rows × cols` matrix with entries N(0, std²).
    public mutating func normalMatrix(rows: Int, cols: Int, std: Float) -> Matrix {
        var m = Matrix(rows: rows, cols: cols)
        for i in m.storage.indices { m.storage[i] = Float(normal()) * std }
        return m
    }
}

#if canImport(Glibc)
import Glibc
@usableFromInline func _log(_ x: Double) -> Double { Glibc.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#elseif canImport(Darwin)
import Darwin
@usableFromInline func _log(_ x: Double) -> Double { Darwin.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif

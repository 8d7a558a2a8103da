import Foundation
import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

@Suite("Foundation: Matrix, errors, RNG, oracle")
struct FoundationSpecs {
    @Test("Matrix(rows:cols:storage:) rejects a storage of the wrong length, naming both")
    func matrixStorageMismatch() {
        #expect(throws: DecoderSpecError.self) { try Matrix(rows: 2, cols: 3, storage: [1, 2, 3]) }
        do {
            _ = try Matrix(rows: 2, cols: 3, storage: [1, 2, 3])
        } catch {
            #expect("\(error)".contains("6 elements for [2, 3]"))
            #expect("\(error)".contains("got 3 elements"))
        }
    }

    @Test("Ragged nested rows are a shape error, not a crash")
    func ragged() {
        #expect(throws: DecoderSpecError.self) { try Matrix([[1, 2], [3]]) }
    }

    @Test("transposed() is an involution and moves (r, c) to (c, r)")
    func transpose() {
        let m = Inputs.matrix(rows: 3, cols: 5, seed: 1)
        let t = m.transposed()
        #expect(t.shape == Shape(5, 3))
        #expect(t[4, 2] == m[2, 4])
        #expect(t.transposed() == m)
    }

    @Test("matmul names both shapes when the inner dimensions differ")
    func matmulShapeError() throws {
        let a = Matrix(rows: 2, cols: 3), b = Matrix(rows: 4, cols: 5)
        do {
            _ = try a.matmul(b)
            Issue.record("expected a shape error")
        } catch let error as DecoderSpecError {
            #expect(error.description.contains("[2, 3]") && error.description.contains("[4, 5]"))
        }
    }

    @Test("SeededRNG is reproducible and its uniforms have mean 1/2 (within 5σ for n = 100 000)")
    func rng() {
        var a = SeededRNG(seed: 42), b = SeededRNG(seed: 42)
        #expect((0..<10).map { _ in a.next() } == (0..<10).map { _ in b.next() })
        var r = SeededRNG(seed: 7)
        let n = 100_000
        let mean = (0..<n).reduce(0.0) { acc, _ in acc + r.uniform() } / Double(n)
        // Var(U) = 1/12, so the standard error of the mean is sqrt(1/(12n)) ≈ 9.1e-4.
        #expect(abs(mean - 0.5) < 5 * (1.0 / (12.0 * Double(n))).squareRoot())
    }

    @Test("GSL dgemm agrees with a hand-computed 2×2 product (exact in Double)")
    func oracleDgemm() throws {
        // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]]
        let c = try GSL.dgemm(m: 2, n: 2, k: 2, a: [1, 2, 3, 4], b: [5, 6, 7, 8])
        #expect(c == [19, 22, 43, 50])
        let ct = try GSL.dgemm(transB: true, m: 2, n: 2, k: 2, a: [1, 2, 3, 4], b: [5, 6, 7, 8])
        #expect(ct == [17, 23, 39, 53])
    }

    @Test("GSL errors are statuses, not aborts: exp(1000) overflows and throws")
    func oracleErrorsThrow() {
        #expect(throws: GSLError.self) { try GSL.exp(1000) }
    }

    @Test("gsl_deriv_central differentiates x³ to within its own error estimate")
    func oracleDerivative() throws {
        let (d, err) = try GSL.derivative(at: 0.3) { x in x * x * x }
        #expect(abs(d - 3 * 0.09) <= max(err, 1e-9))
    }

    @Test("The tolerance ladder: ULP bound accepts 1 ulp, rejects 3 ulps at bound 2")
    func bounds() {
        let x: Float = 1.5
        #expect(Bound.ulps(2).allows(Double(x.nextUp), Double(x)))
        #expect(!Bound.ulps(2).allows(Double(x.nextUp.nextUp.nextUp), Double(x)))
        #expect(!compare([Float(1), 2], [1.0, 2.1], .absolute(0.05)).passed)
        #expect(compare([Float.nan], [Double.nan], .exact).passed)
        #expect(!compare([Float(1)], [Double.nan], .absolute(1)).passed)
    }
}

@Suite("Foundation: oracle edge cases")
struct OracleEdgeSpecs {
    @Test("GSL.tanh saturates to ±1 for large |x| instead of ∞/∞ = NaN, and matches tanh elsewhere (4 Double ulps)")
    func tanhSaturates() {
        #expect(GSL.tanh(400) == 1 && GSL.tanh(-1e300) == -1)
        for x in [-19.5, -3.0, -0.5, 1e-10, 0.25, 2.0, 19.9] {
            let t = GSL.tanh(x)
            // Independent reference: the C library's tanh (within 1 ulp), not GSL's expm1 route.
            let reference = Foundation.tanh(x)
            #expect(abs(t - reference) <= 4 * max(abs(reference), Double.leastNormalMagnitude).ulp, "x = \(x)")
        }
    }
}

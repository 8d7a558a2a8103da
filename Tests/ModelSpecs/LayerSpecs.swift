import DecoderSpec
import GSLOracle
import SpecSupport
import Testing

@Suite("Layers: Linear, FFN, LayerNorm layer, dropout against independent references")
struct LayerSpecs {
    @Test("Linear y = x·Wᵀ + b equals GSL dgemm plus the bias (Double), within the K·ε reduction bound",
          arguments: KernelPath.allCases)
    func linearVsGSL(path: KernelPath) throws {
        var rng = SeededRNG(seed: 31)
        let layer = try Linear(inputSize: 37, outputSize: 19, std: 0.5, rng: &rng)
        var biased = layer
        biased.bias = (0..<19).map { Float($0) * 0.1 - 1 }
        let x = Inputs.matrix(rows: 5, cols: 37, seed: 32)
        let y = try biased(x, path: path)
        var ref = try GSL.dgemm(transB: true, m: 5, n: 19, k: 37, a: x.storage.doubles, b: biased.weight.storage.doubles)
        for r in 0..<5 { for c in 0..<19 { ref[r * 19 + c] += Double(biased.bias![c]) } }
        // Each output is a 37-term Float dot product plus a bias: |error| ≤ 38·ε·Σ|x_p W_jp| + |b|·ε,
        // with |x| ≤ 1 and |W| ≲ 2 that is below 38 · 6e-8 · 74 ≈ 1.7e-4; use 2e-4 absolute.
        #expect(compare(y.storage, ref, .absolute(2e-4)).passed)
    }

    @Test("FFN with exact GELU equals a Double reference built from GSL dgemm and gsl_sf_erf")
    func ffnVsGSL() throws {
        var rng = SeededRNG(seed: 33)
        let ffn = try FeedForward(up: Linear(inputSize: 12, outputSize: 48, std: 0.4, rng: &rng),
                                  down: Linear(inputSize: 48, outputSize: 12, std: 0.4, rng: &rng), activation: .gelu)
        let x = Inputs.matrix(rows: 4, cols: 12, seed: 34)
        let y = try ffn(x, path: .naive)
        let h = try GSL.dgemm(transB: true, m: 4, n: 48, k: 12, a: x.storage.doubles, b: ffn.up.weight.storage.doubles)
        let g = try h.map { v in 0.5 * v * (1 + (try GSL.erf(v / 2.0.squareRoot()))) }
        let ref = try GSL.dgemm(transB: true, m: 4, n: 12, k: 48, a: g, b: ffn.down.weight.storage.doubles)
        // Two Float GEMMs (K = 12 and 48) and a Float erf (≤ 2 ulp): errors ≲ 60·ε·Σ|terms| ≈ 1e-5 here.
        #expect(compare(y.storage, ref, .absolute(2e-5)).passed)
    }

    @Test("Dropout: p = 0 is the identity; kept elements are scaled by 1/(1−p); the mean is preserved (5σ)")
    func dropout() throws {
        var rng = SeededRNG(seed: 35)
        let x = Matrix(rows: 200, cols: 500, repeating: 1)
        #expect(try Dropout(probability: 0)(x, rng: &rng) == x)
        let p: Float = 0.3
        let y = try Dropout(probability: p)(x, rng: &rng)
        #expect(y.storage.allSatisfy { $0 == 0 || $0 == 1 / (1 - p) })
        let n = Double(y.storage.count)
        let mean = y.storage.reduce(0.0) { $0 + Double($1) } / n
        // Each element is Bernoulli(1−p)/(1−p): mean 1, variance p/(1−p); standard error sqrt(p/((1−p)n)).
        #expect(abs(mean - 1) < 5 * (Double(p) / (Double(1 - p) * n)).squareRoot())
        #expect(throws: DecoderSpecError.self) { try Dropout(probability: 1) }
    }

    @Test("Shape errors name both shapes")
    func shapes() throws {
        var rng = SeededRNG(seed: 36)
        let layer = try Linear(inputSize: 8, outputSize: 4, rng: &rng)
        do {
            _ = try layer(Matrix(rows: 2, cols: 7))
            Issue.record("expected a shape error")
        } catch {
            #expect("\(error)".contains("[4, 8]") && "\(error)".contains("[2, 7]"), "\(error)")
        }
        #expect(throws: DecoderSpecError.self) { try LayerNorm(gamma: [1, 1], beta: [0], epsilon: 1e-5) }
        #expect(throws: DecoderSpecError.self) { try LayerNorm(gamma: [1], beta: [0], epsilon: .nan) }
        #expect(throws: DecoderSpecError.self) { try MultiHeadAttention(modelWidth: 10, heads: 3, rng: &rng) }
    }
}

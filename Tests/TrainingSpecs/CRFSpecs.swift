import DecoderSpec
import Foundation
import GSLOracle
import SpecSupport
import Testing

@Suite("Linear-chain CRF: Viterbi and log Z against brute force, NLL gradient against gsl_deriv_central")
struct CRFSpecs {
    static func crf(tags c: Int, seed: UInt) -> LinearChainCRF {
        try! LinearChainCRF(transitions: Inputs.matrix(rows: c, cols: c, seed: seed, range: -2...2),
                            start: Inputs.matrix(rows: 1, cols: c, seed: seed + 1).storage, end: Inputs.matrix(rows: 1, cols: c, seed: seed + 2).storage)
    }

    /// Every tag sequence of length n over c tags.
    static func allSequences(_ n: Int, _ c: Int) -> [[Int]] {
        (0..<Int(pow(Double(c), Double(n)))).map { k in
            var k = k
            return (0..<n).map { _ in defer { k /= c }; return k % c }
        }
    }

    @Test("Viterbi equals brute-force argmax; forward log Z equals brute-force logsumexp", arguments: [(1, 3), (2, 2), (4, 3), (5, 3), (3, 4)])
    func bruteForce(shape: (Int, Int)) throws {
        let (n, c) = shape
        for seed in UInt(1)...UInt(8) {
            let crf = Self.crf(tags: c, seed: seed * 10)
            let emissions = Inputs.matrix(rows: n, cols: c, seed: seed * 10 + 5, range: -2...2)
            let scored = try Self.allSequences(n, c).map { ($0, try crf.score(emissions, $0)) }
            let best = scored.max { $0.1 < $1.1 }!
            let path = try crf.viterbi(emissions)
            // Compare scores (a tie between two paths would make the argmax ambiguous, not wrong).
            #expect(try crf.score(emissions, path) == best.1, "n \(n) c \(c) seed \(seed): Viterbi \(path) vs brute force \(best.0)")
            let m = scored.map(\.1).max()!
            let logZ = m + Foundation.log(scored.reduce(0) { $0 + Foundation.exp($1.1 - m) })
            // Both in Double from the same Float inputs; different summation orders: ~n·c ULPs of Double.
            #expect(Bound.relative(1e-12).allows(try crf.logPartition(emissions), logZ), "log Z n \(n) c \(c) seed \(seed)")
        }
    }

    @Test("NLL gradient (emissions, transitions, start, end) against gsl_deriv_central")
    func gradient() throws {
        let crf = Self.crf(tags: 3, seed: 77)
        let emissions = Inputs.matrix(rows: 4, cols: 3, seed: 78, range: -2...2)
        let gold = [0, 2, 2, 1]
        var g = crf.zeroGradient()
        let (_, dE) = try crf.negativeLogLikelihood(emissions, gold: gold, gradient: &g)
        let check = GradientCheck()
        let loss: (LinearChainCRF, Matrix) -> [Float] = { c, e in
            var scratch = c.zeroGradient()
            return [Float(try! c.negativeLogLikelihood(e, gold: gold, gradient: &scratch).loss)]
        }
        let re = check.run(parameters: emissions.storage, weights: [1], analytic: dE.storage, name: "CRF dE") { loss(crf, emissions.withStorage($0)) }
        let rp = check.run(parameters: crf.flattenedParameters(), weights: [1], analytic: g.flattenedParameters(), name: "CRF dθ") { p in
            var c = crf
            c.setFlattenedParameters(p)
            return loss(c, emissions)
        }
        #expect(re.verdict.passed, "\(re.verdict)")
        #expect(rp.verdict.passed, "\(rp.verdict)")
    }

    @Test("Bad shapes and tags throw")
    func errors() throws {
        let crf = try LinearChainCRF(tagCount: 3)
        var g = crf.zeroGradient()
        #expect(throws: DecoderSpecError.self) { try crf.viterbi(Matrix(rows: 2, cols: 4)) }
        #expect(throws: DecoderSpecError.self) { try crf.negativeLogLikelihood(Matrix(rows: 2, cols: 3), gold: [0, 3], gradient: &g) }
        #expect(throws: DecoderSpecError.self) { try crf.negativeLogLikelihood(Matrix(rows: 2, cols: 3), gold: [0], gradient: &g) }
    }
}

// A linear-chain CRF over tag sequences: training by the forward algorithm, decoding by Viterbi.
// See docs/finetune-ner.md ("CRF").
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// Scores a tag sequence y₁…yₙ given emissions E [n, C] (the head's logits at the words):
///
///     s(y) = start[y₁] + Σ_t E[t, y_t] + Σ_{t>1} A[y_{t−1}, y_t] + end[yₙ]
///     p(y | E) = exp s(y) / Z,   log Z = logsumexp over all Cⁿ sequences (forward algorithm, O(n·C²))
///     NLL = log Z − s(gold)
///
/// Gradients: ∂NLL/∂E[t, c] = P(y_t = c) − 1[gold_t = c]; ∂NLL/∂A[a, b] = Σ_t P(y_{t−1} = a, y_t = b)
/// − count of (a, b) in gold; likewise start/end — the marginals come from forward·backward.
/// Viterbi returns argmax_y s(y) (max-product instead of sum-product).
public struct LinearChainCRF: ParameterContainer, Sendable, Equatable {
    /// A[from, to], [C, C].
    public var transitions: Matrix
    public var start: [Float]
    public var end: [Float]
    public var tagCount: Int { start.count }

    /// Zero transitions, start and end scores for `tagCount` tags.
    /// - Throws: `.invalidArgument` for tagCount ≤ 0.
    public init(tagCount: Int) throws {
        try Validate.positive(tagCount, "CRF tag count")
        transitions = Matrix(rows: tagCount, cols: tagCount)
        start = [Float](repeating: 0, count: tagCount)
        end = start
    }

    /// - Throws: `.shapeMismatch` unless A is [C, C] and start/end are [C].
    public init(transitions: Matrix, start: [Float], end: [Float]) throws {
        guard transitions.rows == start.count, transitions.cols == start.count, end.count == start.count, !start.isEmpty else {
            throw DecoderSpecError.shapeMismatch(operation: "LinearChainCRF", expected: "A [C, C], start [C], end [C]",
                                                 actual: "A \(transitions.shape), start [\(start.count)], end [\(end.count)]")
        }
        (self.transitions, self.start, self.end) = (transitions, start, end)
    }

    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try body(join(prefix, "transitions"), [tagCount, tagCount], &transitions.storage)
        try body(join(prefix, "start_transitions"), [tagCount], &start)
        try body(join(prefix, "end_transitions"), [tagCount], &end)
    }

    func validate(_ emissions: Matrix, _ tags: [Int]? = nil) throws {
        guard emissions.cols == tagCount, emissions.rows > 0 else {
            throw DecoderSpecError.shapeMismatch(operation: "CRF emissions", expected: "[n ≥ 1, \(tagCount)]", actual: "\(emissions.shape)")
        }
        if let tags {
            guard tags.count == emissions.rows else {
                throw DecoderSpecError.shapeMismatch(operation: "CRF tags", expected: "\(emissions.rows) tags", actual: "\(tags.count)")
            }
            for (i, t) in tags.enumerated() where t < 0 || t >= tagCount {
                throw DecoderSpecError.idOutOfRange(id: t, position: i, vocabularySize: tagCount)
            }
        }
    }

    /// s(y) in Double.
    public func score(_ emissions: Matrix, _ tags: [Int]) throws -> Double {
        try validate(emissions, tags)
        var s = Double(start[tags[0]]) + Double(end[tags[tags.count - 1]])
        for t in tags.indices {
            s += Double(emissions[t, tags[t]])
            if t > 0 { s += Double(transitions[tags[t - 1], tags[t]]) }
        }
        return s
    }

    static func logSumExp(_ v: [Double]) -> Double {
        let m = v.max()!
        if m == -.infinity { return m }
        return m + log(v.reduce(0) { $0 + exp($1 - m) })
    }

    /// NLL = log Z − s(gold), ∂NLL/∂E [n, C], and the parameter gradient accumulated into `g`.
    public func negativeLogLikelihood(_ emissions: Matrix, gold: [Int], gradient g: inout LinearChainCRF) throws -> (loss: Double, dEmissions: Matrix) {
        try validate(emissions, gold)
        let n = emissions.rows, c = tagCount
        let e = { (t: Int, y: Int) in Double(emissions[t, y]) }
        let a = { (x: Int, y: Int) in Double(self.transitions[x, y]) }
        // α_t(y) = log Σ over prefixes ending in y;  β_t(y) = log Σ over suffixes after y.
        var alpha = [[Double]](repeating: [Double](repeating: 0, count: c), count: n)
        var beta = alpha
        for y in 0..<c { alpha[0][y] = Double(start[y]) + e(0, y) }
        for t in 1..<max(n, 1) {
            for y in 0..<c { alpha[t][y] = Self.logSumExp((0..<c).map { alpha[t - 1][$0] + a($0, y) }) + e(t, y) }
        }
        for y in 0..<c { beta[n - 1][y] = Double(end[y]) }
        for t in stride(from: n - 2, through: 0, by: -1) {
            for x in 0..<c { beta[t][x] = Self.logSumExp((0..<c).map { a(x, $0) + e(t + 1, $0) + beta[t + 1][$0] }) }
        }
        let logZ = Self.logSumExp((0..<c).map { alpha[n - 1][$0] + Double(end[$0]) })
        var dE = Matrix(rows: n, cols: c)
        for t in 0..<n {
            for y in 0..<c { dE[t, y] = Float(exp(alpha[t][y] + beta[t][y] - logZ) - (gold[t] == y ? 1 : 0)) }
        }
        for y in 0..<c {
            g.start[y] += Float(exp(alpha[0][y] + beta[0][y] - logZ) - (gold[0] == y ? 1 : 0))
            g.end[y] += Float(exp(alpha[n - 1][y] + Double(end[y]) - logZ) - (gold[n - 1] == y ? 1 : 0))
        }
        for t in 1..<max(n, 1) {
            for x in 0..<c {
                for y in 0..<c {
                    let pair = exp(alpha[t - 1][x] + a(x, y) + e(t, y) + beta[t][y] - logZ)
                    g.transitions[x, y] += Float(pair - (gold[t - 1] == x && gold[t] == y ? 1 : 0))
                }
            }
        }
        return (logZ - (try score(emissions, gold)), dE)
    }

    /// log Z by the forward algorithm (for specs against brute force).
    public func logPartition(_ emissions: Matrix) throws -> Double {
        var g = self.zeroGradient()
        let gold = [Int](repeating: 0, count: emissions.rows)
        let (nll, _) = try negativeLogLikelihood(emissions, gold: gold, gradient: &g)
        return nll + (try score(emissions, gold))
    }

    /// argmax_y s(y) by Viterbi: δ_t(y) = max_x δ_{t−1}(x) + A[x, y] + E[t, y], with back-pointers.
    /// Ties go to the smaller tag index.
    public func viterbi(_ emissions: Matrix) throws -> [Int] {
        try validate(emissions)
        let n = emissions.rows, c = tagCount
        var delta = (0..<c).map { Double(start[$0]) + Double(emissions[0, $0]) }
        var back = [[Int]](repeating: [Int](repeating: 0, count: c), count: n)
        for t in 1..<max(n, 1) {
            var next = [Double](repeating: 0, count: c)
            for y in 0..<c {
                var best = 0
                for x in 1..<c where delta[x] + Double(transitions[x, y]) > delta[best] + Double(transitions[best, y]) { best = x }
                back[t][y] = best
                next[y] = delta[best] + Double(transitions[best, y]) + Double(emissions[t, y])
            }
            delta = next
        }
        var last = 0
        for y in 1..<c where delta[y] + Double(end[y]) > delta[last] + Double(end[last]) { last = y }
        var path = [last]
        for t in stride(from: n - 1, to: 0, by: -1) { path.append(back[t][path.last!]) }
        return path.reversed()
    }
}

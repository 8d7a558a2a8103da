#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Attention with linear biases (ALiBi, Press, Smith & Lewis 2022, "Train Short, Test Long").
/// See docs/positional-encoding.md, "ALiBi".
///
/// No position is added to the tokens; instead head h adds a fixed, distance-proportional
/// penalty to its attention logits:
///
///     S_h[i, j] = q_i·k_j/√d_head − m_h·|p_i − j|        p_i = queryOffset + i (absolute position of query i)
///
/// Under a causal mask j ≤ p_i, so the bias is −m_h·(p_i − j), the paper's form; the absolute value
/// is the bidirectional variant for an encoder. The slopes m_h are a geometric sequence:
///
///     n a power of two:  m_h = 2^(−8h/n),  h = 1 … n          (n = 8: 1/2, 1/4, …, 1/256)
///     otherwise (the reference code's `get_slopes`): with p = 2^⌊log₂ n⌋, the p slopes of p heads,
///     then the slopes of 2p heads at odd h (1, 3, 5, …), the first n − p of them.
///
/// The bias enters attention in two forms (`KernelPath`): `.naive` materializes the [Tq, Tk]
/// matrix `bias` per head and adds it to the scores; the fused kernel (`.optimized`) adds
/// −m_h·|p_i − j| to each score as it computes it, never allocating Tq×Tk.
public enum ALiBiKernel {
    /// The slopes of `heads` heads (the reference code's `get_slopes(n)`, transcribed), in Double.
    /// Precondition: heads > 0.
    public static func slopes(heads n: Int) -> [Double] {
        precondition(n > 0, "ALiBi needs at least one head")
        func powerOfTwo(_ n: Int) -> [Double] {
            let start = pow(2, -pow(2, -(log2(Double(n)) - 3)))  // 2^(−8/n)
            return (0..<n).map { start * pow(start, Double($0)) }
        }
        if n & (n - 1) == 0 { return powerOfTwo(n) }
        let closest = 1 << Int(log2(Double(n)).rounded(.down))
        let extra = slopes(heads: 2 * closest).enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        return powerOfTwo(closest) + extra.prefix(n - closest)
    }

    /// The bias matrix of one head, [queries, keys] row-major: −slope·|queryOffset + i − j|.
    public static func bias(slope: Float, queries: Int, keys: Int, queryOffset: Int) -> [Float] {
        var b = [Float](repeating: 0, count: queries * keys)
        for i in 0..<queries {
            for j in 0..<keys { b[i * keys + j] = -slope * Float(abs(queryOffset + i - j)) }
        }
        return b
    }
}

// Concept 4 — masking. See docs/masking.md.
import TensorCore

/// Which keys each query may attend to: none, causal (look-ahead), key padding, an explicit
/// additive bias, or any combination of them. See docs/masking.md.
///
/// For query row i (0-based, `queryOffset` = absolute position of query 0) and key column j:
///
///     visible(i, j) = (not causal or j ≤ i + queryOffset) and (no padding or j < validLength)
///     M[i, j]       = 0 if visible(i, j) else −∞          (plus `additive[i, j]` when given)
///
/// Causal and padding constraints always leave a *prefix* of the keys visible, so they can be
/// applied either as an additive −∞ matrix (the naive path, `materialize`) or as a loop bound
/// (`visibleKeyCount`, the fused path). An explicit `additive` bias has to be added element by
/// element.
///
/// A query row with no visible key ("fully masked") attends to nothing: its weights are all 0 and
/// its output row is all 0 — never NaN. This is the convention of `Softmax.rows` and is specced
/// in AttentionSpecs.
///
/// `queryOffset` is what a KV-cached decoder needs: with Tk cached keys and Tq new queries at
/// absolute positions Tk − Tq … Tk − 1, the mask is `.causal(queryOffset: Tk − Tq)`.
public struct AttentionMask: Sendable, Equatable, CustomStringConvertible {
    /// Query i may see key j only when j ≤ i + queryOffset.
    public var isCausal: Bool
    /// The absolute position of query row 0 (used only when `isCausal`). Must be ≥ 0.
    public var queryOffset: Int
    /// Keys j ≥ validLength are padding and never visible; `nil` means every key is valid.
    public var keyValidLength: Int?
    /// An explicit additive bias [Tq, Tk] (finite values or −∞), added to the scores on top of
    /// the causal and padding constraints; `nil` means none.
    public var additive: Matrix?

    public init(isCausal: Bool = false, queryOffset: Int = 0, keyValidLength: Int? = nil, additive: Matrix? = nil) {
        self.isCausal = isCausal
        self.queryOffset = queryOffset
        self.keyValidLength = keyValidLength
        self.additive = additive
    }

    /// Every query sees every key.
    public static let none = AttentionMask()

    /// Query i sees keys 0 … i + queryOffset (the look-ahead mask of a decoder).
    public static func causal(queryOffset: Int = 0) -> AttentionMask {
        AttentionMask(isCausal: true, queryOffset: queryOffset)
    }

    /// Keys at positions ≥ `validLength` are padding: no query sees them.
    public static func keyPadding(validLength: Int) -> AttentionMask {
        AttentionMask(keyValidLength: validLength)
    }

    /// An explicit additive bias [Tq, Tk]: 0 where visible, −∞ where masked (or any finite bias).
    public static func additive(_ bias: Matrix) -> AttentionMask {
        AttentionMask(additive: bias)
    }

    /// Both masks at once: a key is visible only when both allow it. Causal offsets must agree
    /// when both are causal (they describe the same queries); the smaller valid length wins;
    /// additive biases add.
    /// - Throws: `.invalidArgument` when both are causal with different offsets;
    ///   `.shapeMismatch` when both carry additive biases of different shapes.
    public func combined(with other: AttentionMask) throws -> AttentionMask {
        var result = self
        if other.isCausal {
            if isCausal && queryOffset != other.queryOffset {
                throw DecoderSpecError.invalidArgument(
                    what: "mask combination",
                    reason: "causal masks with different query offsets (\(queryOffset) vs \(other.queryOffset))")
            }
            result.isCausal = true
            result.queryOffset = other.queryOffset
        }
        switch (keyValidLength, other.keyValidLength) {
        case let (a?, b?): result.keyValidLength = Swift.min(a, b)
        case let (nil, b): result.keyValidLength = b ?? keyValidLength
        case (_, nil): break
        }
        switch (additive, other.additive) {
        case let (a?, b?):
            guard a.shape == b.shape else {
                throw DecoderSpecError.shapeMismatch(operation: "AttentionMask.combined(with:)",
                                                     expected: "additive biases of equal shape \(a.shape)", actual: "\(b.shape)")
            }
            var sum = a
            for idx in sum.storage.indices { sum.storage[idx] += b.storage[idx] }
            result.additive = sum
        case let (nil, b): result.additive = b ?? additive
        case (_, nil): break
        }
        return result
    }

    /// Checks that the mask fits `queries` × `keys` scores.
    /// - Throws: `.invalidArgument` for negative sizes, a negative offset or valid length; `.shapeMismatch` when
    ///   the valid length exceeds `keys` or the additive bias is not [queries, keys];
    ///   `.nonFinite` for a NaN or +∞ in the additive bias (−∞ means "masked" and is allowed).
    public func validate(queries: Int, keys: Int) throws {
        guard queries >= 0, keys >= 0 else {
            throw DecoderSpecError.invalidArgument(what: "mask size [\(queries), \(keys)]", reason: "Tq and Tk must be ≥ 0")
        }
        if isCausal && queryOffset < 0 {
            throw DecoderSpecError.invalidArgument(what: "causal mask queryOffset", reason: "must be ≥ 0, got \(queryOffset)")
        }
        if let n = keyValidLength {
            guard n >= 0 else {
                throw DecoderSpecError.invalidArgument(what: "key padding validLength", reason: "must be ≥ 0, got \(n)")
            }
            guard n <= keys else {
                throw DecoderSpecError.shapeMismatch(operation: "AttentionMask.keyPadding", expected: "validLength ≤ Tk = \(keys)",
                                                     actual: "validLength \(n)")
            }
        }
        if let a = additive {
            guard a.rows == queries && a.cols == keys else {
                throw DecoderSpecError.shapeMismatch(operation: "AttentionMask.additive", expected: "[Tq, Tk] = [\(queries), \(keys)]",
                                                     actual: "\(a.shape)")
            }
            for (idx, v) in a.storage.enumerated() where v.isNaN || v == .infinity {
                throw DecoderSpecError.nonFinite(what: "additive mask \(a.shape)", index: idx, value: Double(v))
            }
        }
    }

    /// How many leading keys query `i` may see under the causal and padding constraints (the loop
    /// bound of the fused kernel): min(keys, validLength, i + queryOffset + 1), clamped at 0.
    /// Keys at j ≥ this count are masked; the additive bias is not included.
    @inlinable
    public func visibleKeyCount(query i: Int, keys: Int) -> Int {
        var n = keys
        if let v = keyValidLength { n = Swift.min(n, v) }
        // An offset ≥ keys hides nothing; clamping keeps i + offset + 1 from overflowing.
        if isCausal { n = Swift.min(n, i + Swift.min(queryOffset, keys) + 1) }
        return Swift.max(0, n)
    }

    /// True when query `i` may see key `j` (ignoring the additive bias's values).
    @inlinable
    public func allows(query i: Int, key j: Int, keys: Int) -> Bool {
        j >= 0 && j < visibleKeyCount(query: i, keys: keys)
    }

    /// The additive mask matrix M [queries, keys]: 0 where visible, −∞ where masked, plus the
    /// additive bias when present. This is what the naive attention path adds to the scores.
    /// - Throws: as `validate(queries:keys:)`.
    public func materialize(queries: Int, keys: Int) throws -> Matrix {
        try validate(queries: queries, keys: keys)
        var m = additive ?? Matrix(rows: queries, cols: keys)
        for i in 0..<queries {
            let visible = visibleKeyCount(query: i, keys: keys)
            for j in visible..<keys { m[i, j] = -.infinity }
        }
        return m
    }

    public var description: String {
        var parts: [String] = []
        if isCausal { parts.append(queryOffset == 0 ? "causal" : "causal(queryOffset: \(queryOffset))") }
        if let v = keyValidLength { parts.append("keyPadding(validLength: \(v))") }
        if let a = additive { parts.append("additive\(a.shape)") }
        return parts.isEmpty ? "none" : parts.joined(separator: " + ")
    }

    /// The mask as rows of characters for notebooks: "■" visible, "·" masked.
    public func picture(queries: Int, keys: Int) throws -> String {
        let m = try materialize(queries: queries, keys: keys)
        var lines: [String] = []
        for i in 0..<queries {
            var s = ""
            for j in 0..<keys { s += m[i, j] == -.infinity ? "·" : "■" }
            lines.append(s)
        }
        return lines.joined(separator: "\n")
    }
}

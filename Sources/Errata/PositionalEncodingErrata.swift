// The source documents' positional-encoding formulas and code, transcribed verbatim so their
// defects can be shown executably (the documents: docs/sources.md). The correct formula is
// `SinusoidalPositionalEncoding` / `PositionalTable`; docs/positional-encoding.md quotes each
// original next to it. Every table here is [positions, d] like the correct one, so the same
// property checks (PositionalEncodingSpecs) run against both — and fail here. These are exhibits,
// not API for model code: sizes are preconditions (positions ≥ 0, dimension ≥ 1), not errors.
import TensorCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public enum PositionalEncodingErrata {
    /// Doc 000 (§4.2, §4.3):  p_t = sin(2πt/10000) + cos(2πt/10000)
    ///
    /// The right-hand side has no dimension index, so every one of the D columns of row t holds
    /// the same number: a position is one scalar repeated D times. Shape [positions, d].
    public static func doc000Formula(positions: Int, dimension d: Int) -> Matrix {
        var m = Matrix(rows: positions, cols: d)
        for t in 0..<positions {
            let x = 2 * Double.pi * Double(t) / 10000
            let p = Float(sin(x) + cos(x))
            for j in 0..<d { m[t, j] = p }
        }
        return m
    }

    /// Doc 002 (§4.2):  PE(i) = sin(2πi/d_model) + cos(2πi/d_model)
    ///
    /// Again no dimension index (every column equal), and the period is d_model positions:
    /// PE(i + d_model) = PE(i), so positions i and i + d_model are indistinguishable.
    public static func doc002Formula(positions: Int, dimension d: Int) -> Matrix {
        var m = Matrix(rows: positions, cols: d)
        for i in 0..<positions {
            let x = 2 * Double.pi * Double(i) / Double(d)
            let p = Float(sin(x) + cos(x))
            for j in 0..<d { m[i, j] = p }
        }
        return m
    }

    /// Doc 004 (§3.1, §4.1):
    ///     PE(pos,i) = sin(2π / 10000 * pos/1024 * i / d_model) + cos(2π / 10000 * pos/1024 * (i + 1) / d_model)
    ///
    /// Every coordinate is a sum of a sine and a cosine of two different angles, so no pair of
    /// columns is (sin, cos) of one angle: a shift of position is no longer a rotation, and the
    /// angles are tiny (at most 2π·pos/(10000·1024)), so nearby positions are almost equal.
    public static func doc004Formula(positions: Int, dimension d: Int) -> Matrix {
        var m = Matrix(rows: positions, cols: d)
        for pos in 0..<positions {
            for i in 0..<d {
                let a = 2 * Double.pi / 10000 * Double(pos) / 1024 * Double(i) / Double(d)
                let b = 2 * Double.pi / 10000 * Double(pos) / 1024 * Double(i + 1) / Double(d)
                m[pos, i] = Float(sin(a) + cos(b))
            }
        }
        return m
    }

    /// Doc 000's code (§3.2.1 and §3.2.2):
    ///
    ///     position = torch.arange(0, max_len).unsqueeze(1).to(device)
    ///     position = position * (position // layer_norm).to(torch.int32) + position % layer_norm.to(torch.int32)
    ///     position_enc = position.new_zeros(position.size(), embed_dim)
    ///     position_enc[:, 0::2] = torch.sin(position * (1 / 10000 ** (position // 2)))
    ///     position_enc[:, 1::2] = torch.cos(position * (1 / 10000 ** (position // 2)))
    ///
    /// Transcribed in real arithmetic (the snippet as written does not run: `layer_norm` is never
    /// defined and `new_zeros(size, embed_dim)` is not a valid call; see the doc page). The
    /// exponent is `position // 2` — the *position*, not the dimension index — so every even
    /// column of a row holds sin(p·10000^(−⌊p/2⌋)) and every odd column the matching cosine: the
    /// row has one frequency, and that frequency collapses to 0 as p grows, so rows from p ≈ 10
    /// on are all [0, 1, 0, 1, …] = PE(0).
    ///
    /// `layerNorm` stands for the snippet's undefined `layer_norm`, read as an integer; with the
    /// default (≥ max_len) the second line is the identity p ↦ p·0 + p.
    public static func doc000Code(positions maxLen: Int, dimension embedDim: Int, layerNorm: Int? = nil) -> Matrix {
        let L = layerNorm ?? max(maxLen, 1)
        var m = Matrix(rows: maxLen, cols: embedDim)
        for p0 in 0..<maxLen {
            let p = p0 * (p0 / L) + p0 % L
            let freq = 1 / pow(10000.0, Double(p / 2))
            let s = Float(sin(Double(p) * freq)), c = Float(cos(Double(p) * freq))
            for j in stride(from: 0, to: embedDim, by: 2) { m[p0, j] = s }
            for j in stride(from: 1, to: embedDim, by: 2) { m[p0, j] = c }
        }
        return m
    }

    /// Doc 000's code, last line:  X = torch.cat((embedding(src), position_enc), dim=1)
    ///
    /// Concatenation instead of addition: [T, d] ++ [T, d] → [T, 2d]. The model width silently
    /// doubles (every later layer built for d_model no longer fits) and the position lives in
    /// separate coordinates instead of being mixed into the token vector (X' = E[X] + P).
    public static func doc000Concatenate(_ embeddings: Matrix, _ positions: Matrix) -> Matrix {
        precondition(embeddings.rows == positions.rows, "torch.cat(dim=1) needs equal row counts")
        var out = Matrix(rows: embeddings.rows, cols: embeddings.cols + positions.cols)
        for t in 0..<embeddings.rows {
            for j in 0..<embeddings.cols { out[t, j] = embeddings[t, j] }
            for j in 0..<positions.cols { out[t, embeddings.cols + j] = positions[t, j] }
        }
        return out
    }
}

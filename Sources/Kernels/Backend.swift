/// Which implementation of the hot loops a whole computation (a forward pass, a generation)
/// runs on. Model code takes a `Backend` so the two paths can be compared end to end.
///
/// - `naive`: every kernel's literal transcription of its formula — the reference.
/// - `optimized`: every kernel's SIMD/blocked/fused path, single-threaded.
public enum Backend: String, CaseIterable, Sendable {
    case naive, optimized

    public var gemm: GEMM.Variant { self == .naive ? .naive : .optimized }
    public var softmax: Softmax.Variant { self == .naive ? .naive : .optimized }
    public var layerNorm: LayerNormKernel.Variant { self == .naive ? .naive : .optimized }
    public var activation: Activation.Variant { self == .naive ? .naive : .optimized }
}

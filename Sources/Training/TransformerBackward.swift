// A Transformer layer's training forward (with caches) and backward, pre- or post-norm, with
// optional cross-attention — the pieces an encoder, a GPT-style decoder and an encoder-decoder
// share. See docs/training.md.
import Embedding
import Embedding
import Kernels
import Layers
import TensorCore

/// One residual branch's cache: the LayerNorm's and the sublayer's.
public struct ResidualCache<Inner: Sendable>: Sendable {
    public var norm: LayerNormCache
    public var inner: Inner
}

public struct TransformerLayerCache: Sendable {
    public var selfAttention: ResidualCache<AttentionCache>
    public var crossAttention: ResidualCache<AttentionCache>?
    public var feedForward: ResidualCache<FeedForwardCache>
}

extension TransformerLayer {
    /// pre-norm:  out = x + f(LN(x));   post-norm: out = LN(x + f(x)).
    func residualForward<C>(_ x: Matrix, _ norm: LayerNorm, _ f: (Matrix) -> (Matrix, C)) -> (Matrix, ResidualCache<C>) {
        switch placement {
        case .pre:
            let (u, nc) = norm.trainingForward(x)
            var (y, c) = f(u)
            y.addInPlace(x)
            return (y, ResidualCache(norm: nc, inner: c))
        case .post:
            var (z, c) = f(x)
            z.addInPlace(x)
            let (y, nc) = norm.trainingForward(z)
            return (y, ResidualCache(norm: nc, inner: c))
        }
    }

    /// Backward of one residual branch; `innerBackward` maps d(sublayer output) to d(sublayer input).
    ///
    ///     pre-norm:  dx = dOut + LN.backward(f.backward(dOut))
    ///     post-norm: dz = LN.backward(dOut);  dx = dz + f.backward(dz)
    func residualBackward<C>(_ dOut: Matrix, _ cache: ResidualCache<C>, _ norm: LayerNorm, _ gNorm: inout LayerNorm,
                             _ innerBackward: (Matrix) -> Matrix) -> Matrix {
        switch placement {
        case .pre:
            let du = innerBackward(dOut)
            var dx = norm.backward(du, cache: cache.norm, gradient: &gNorm)
            dx.addInPlace(dOut)
            return dx
        case .post:
            let dz = norm.backward(dOut, cache: cache.norm, gradient: &gNorm)
            var dx = innerBackward(dz)
            dx.addInPlace(dz)
            return dx
        }
    }

    /// The layer over packed rows. `segments` are the self-attention segments (the layer's
    /// `causal` flag is applied to each); `memory`/`memorySegments` feed cross-attention.
    public func trainingForward(_ x: Matrix, segments: [AttentionSegment], memory: Matrix? = nil,
                                memorySegments: [AttentionSegment]? = nil, path: KernelPath) -> (Matrix, TransformerLayerCache) {
        let selfSegments = segments.map { s -> AttentionSegment in var s = s; s.causal = s.causal || causal; return s }
        let (h1, sc) = residualForward(x, selfAttentionNorm) { u in
            selfAttention.trainingForward(u, memory: u, segments: selfSegments, path: path)
        }
        var h = h1
        var cc: ResidualCache<AttentionCache>? = nil
        if let crossAttention, let crossAttentionNorm {
            guard let memory, let memorySegments else { preconditionFailure("cross-attention needs memory and memory segments") }
            let (h2, c2) = residualForward(h, crossAttentionNorm) { u in
                crossAttention.trainingForward(u, memory: memory, segments: memorySegments, path: path)
            }
            h = h2
            cc = c2
        }
        let (out, fc) = residualForward(h, feedForwardNorm) { u in feedForward.trainingForward(u, path: path) }
        return (out, TransformerLayerCache(selfAttention: sc, crossAttention: cc, feedForward: fc))
    }

    /// Backward through the layer: returns dL/dx, and accumulates dL/d(memory) into `dMemory`
    /// when the layer has cross-attention.
    public func backward(_ dOut: Matrix, cache: TransformerLayerCache, gradient g: inout TransformerLayer,
                         dMemory: inout Matrix?, path: KernelPath) -> Matrix {
        var dh = residualBackward(dOut, cache.feedForward, feedForwardNorm, &g.feedForwardNorm) { dy in
            feedForward.backward(dy, cache: cache.feedForward.inner, gradient: &g.feedForward, path: path)
        }
        if let crossAttention, let crossAttentionNorm, let cc = cache.crossAttention {
            var gCross = g.crossAttention!, gCrossNorm = g.crossAttentionNorm!
            dh = residualBackward(dh, cc, crossAttentionNorm, &gCrossNorm) { dy in
                let (dq, dm) = crossAttention.backward(dy, cache: cc.inner, gradient: &gCross, path: path)
                if dMemory == nil { dMemory = dm } else { dMemory!.addInPlace(dm) }
                return dq
            }
            g.crossAttention = gCross
            g.crossAttentionNorm = gCrossNorm
        }
        return residualBackward(dh, cache.selfAttention, selfAttentionNorm, &g.selfAttentionNorm) { dy in
            var (dq, dkv) = selfAttention.backward(dy, cache: cache.selfAttention.inner, gradient: &g.selfAttention, path: path)
            dq.addInPlace(dkv)
            return dq
        }
    }
}

extension Array where Element == TransformerLayer {
    /// The layers in order over packed rows (`TransformerLayer.trainingForward`), keeping each
    /// one's cache: an encoder, a decoder (with `memory` for cross-attention) or a GPT-style stack.
    public func trainingForward(_ x: Matrix, segments: [AttentionSegment], memory: Matrix? = nil,
                                memorySegments: [AttentionSegment]? = nil, path: KernelPath) -> (Matrix, [TransformerLayerCache]) {
        var h = x
        var caches: [TransformerLayerCache] = []
        caches.reserveCapacity(count)
        for layer in self {
            let (next, c) = layer.trainingForward(h, segments: segments, memory: memory, memorySegments: memorySegments, path: path)
            h = next
            caches.append(c)
        }
        return (h, caches)
    }

    /// Backward through the layers in reverse: returns dL/dx, accumulates each layer's gradient into
    /// `gradient` and, for layers with cross-attention, dL/d(memory) into `dMemory`.
    public func backward(_ dOut: Matrix, caches: [TransformerLayerCache], gradient: inout [TransformerLayer],
                         dMemory: inout Matrix?, path: KernelPath) -> Matrix {
        var dh = dOut
        for l in indices.reversed() {
            dh = self[l].backward(dh, cache: caches[l], gradient: &gradient[l], dMemory: &dMemory, path: path)
        }
        return dh
    }
}

/// The output stage of a model with a final LayerNorm and a head tied to its token table (GPT-2,
/// the translation decoder): z = LN(h)·Eᵀ and the loss over the labelled rows.
struct TiedHeadLoss {
    let logits: Matrix
    let loss: Double
    let labelled: Int
    let normed: Matrix
    let normCache: LayerNormCache
    let dLogits: Matrix

    init(_ h: Matrix, norm: LayerNorm, table: EmbeddingTable, loss: CrossEntropyLoss, targets: [Int], path: KernelPath) throws {
        (normed, normCache) = norm.trainingForward(h)
        logits = try table.tiedLogits(normed, path: path)
        (self.loss, dLogits, labelled) = try loss(logits: logits, targets: targets, path: path)
    }

    /// dL/dh; adds dZᵀ·LN(h) to the table's gradient (the head's share) and the norm's gradient.
    func backward(norm: LayerNorm, table: EmbeddingTable, normGradient: inout LayerNorm, tableGradient: inout Matrix, path: KernelPath) -> Matrix {
        let dNormed = table.tiedLogitsBackward(dLogits, hidden: normed, gradient: &tableGradient, path: path)
        return norm.backward(dNormed, cache: normCache, gradient: &normGradient)
    }
}

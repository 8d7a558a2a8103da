// Concept 7 — training. See docs/training.md.
//
// A model's gradient is a value of the model's own type whose tensors hold ∂L/∂θ instead of θ:
// `grad.head.weight` is ∂L/∂W_head. `visitParameters` walks every trainable tensor in a fixed
// order under its checkpoint name (Hugging Face BERT names), so the optimizer, gradient clipping,
// checkpoints and gradient checks all iterate the same list.
import Embedding
import Kernels
import Layers
import Models
import PositionalEncoding
import TensorCore

/// Something with named trainable tensors.
public protocol ParameterContainer {
    /// Calls `body(name, shape, &values)` for every trainable tensor, always in the same order.
    mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows

    /// For a gradient: the rows that may be nonzero of some [rows, cols] tensors, keyed by the
    /// tensor's index in visiting order — sorted, distinct row indices; every other row of that
    /// tensor is +0 exactly. A tensor without an entry may be nonzero anywhere. Readers
    /// (`DataParallel`'s combination, `GradientClipping.globalNorm`, `AdamW.update`) skip the +0
    /// rows with bitwise the dense result. The default: no entries, and setting is ignored (dense
    /// is always correct).
    var rowSupports: [Int: [Int]] { get set }
}

extension ParameterContainer {
    public var rowSupports: [Int: [Int]] {
        get { [:] }
        set {}
    }
}

extension ParameterContainer {
    /// Replaces every parameter from `flat` (visiting order); the inverse of `flattenedParameters`.
    public mutating func setFlattenedParameters(_ flat: [Float]) {
        var offset = 0
        visitParameters(prefix: "") { _, _, v in
            v = Array(flat[offset..<(offset + v.count)])
            offset += v.count
        }
    }

    /// A copy with every parameter set to 0: the gradient accumulator of the same shape.
    public func zeroGradient() -> Self {
        var g = self
        g.rowSupports = [:]
        // A fresh zeroed buffer per tensor: the model's buffers are never copied (no COW copy).
        g.visitParameters(prefix: "") { _, _, v in v = [Float](repeating: 0, count: v.count) }
        return g
    }

    /// (name, shape) of every parameter, in visiting order.
    public func parameterShapes() -> [(name: String, shape: [Int])] {
        var copy = self
        var out: [(String, [Int])] = []
        copy.visitParameters(prefix: "") { n, s, _ in out.append((n, s)) }
        return out
    }

    /// Number of scalar parameters.
    public var parameterCount: Int { parameterShapes().reduce(0) { $0 + $1.shape.reduce(1, *) } }

    /// All parameters concatenated in visiting order (for gradient checks and comparisons).
    public func flattenedParameters() -> [Float] {
        var copy = self
        var out: [Float] = []
        copy.visitParameters(prefix: "") { _, _, v in out.append(contentsOf: v) }
        return out
    }

    /// Sets parameter number `index` of the flattened list (a gradient check's perturbation).
    public mutating func setFlattenedParameter(_ index: Int, to value: Float) {
        var offset = 0
        visitParameters(prefix: "") { _, _, v in
            if index >= offset && index < offset + v.count { v[index - offset] = value }
            offset += v.count
        }
    }
}

@inline(__always) func join(_ prefix: String, _ name: String) -> String { prefix.isEmpty ? name : prefix + "." + name }

extension ParameterContainer {
    /// Visits the `Linear`s a layer is made of, each under `prefix.name`, in the table's order: a
    /// layer's parameter names are this table (name → which `Linear`).
    mutating func visitLinears(_ table: KeyValuePairs<String, WritableKeyPath<Self, Linear>>, prefix: String,
                               _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        for (name, linear) in table { try self[keyPath: linear].visitParameters(prefix: join(prefix, name), body) }
    }
}

extension Linear: ParameterContainer {
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try body(join(prefix, "weight"), [weight.rows, weight.cols], &weight.storage)
        if bias != nil {
            var b = bias!
            bias = nil  // keep the array uniquely referenced while it is mutated
            defer { bias = b }
            try body(join(prefix, "bias"), [b.count], &b)
        }
    }
}

extension LayerNorm: ParameterContainer {
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try body(join(prefix, "weight"), [gamma.count], &gamma)
        try body(join(prefix, "bias"), [beta.count], &beta)
    }
}

extension FeedForward: ParameterContainer {
    /// BERT names: `intermediate.dense` (W₁), `output.dense` (W₂).
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try visitLinears(["intermediate.dense": \.up, "output.dense": \.down], prefix: prefix, body)
    }
}

extension MultiHeadAttention: ParameterContainer {
    /// BERT names: `self.query`, `self.key`, `self.value`, `output.dense`.
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try visitLinears(["self.query": \.query, "self.key": \.key, "self.value": \.value, "output.dense": \.output], prefix: prefix, body)
    }
}

extension TransformerLayer: ParameterContainer {
    /// BERT layer names (`attention.*`, `intermediate.dense`, `output.dense`, `output.LayerNorm`);
    /// cross-attention as Hugging Face's BertGeneration decoder names it (`crossattention.*`).
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try selfAttention.visitParameters(prefix: join(prefix, "attention"), body)
        try selfAttentionNorm.visitParameters(prefix: join(prefix, "attention.output.LayerNorm"), body)
        if crossAttention != nil {
            try crossAttention!.visitParameters(prefix: join(prefix, "crossattention"), body)
            try crossAttentionNorm!.visitParameters(prefix: join(prefix, "crossattention.output.LayerNorm"), body)
        }
        try feedForward.visitParameters(prefix: prefix, body)
        try feedForwardNorm.visitParameters(prefix: join(prefix, "output.LayerNorm"), body)
    }
}

extension EncoderModel: ParameterContainer {
    /// Exactly the tensor names of a Hugging Face BERT checkpoint, so a saved encoder loads with
    /// `EncoderModel.load(directory:)`.
    public mutating func visitParameters(prefix: String, _ body: (String, [Int], inout [Float]) throws -> Void) rethrows {
        try body(join(prefix, "embeddings.word_embeddings.weight"), [wordEmbedding.weight.rows, wordEmbedding.weight.cols], &wordEmbedding.weight.storage)
        try body(join(prefix, "embeddings.position_embeddings.weight"), [positions.weight.rows, positions.weight.cols], &positions.weight.storage)
        try body(join(prefix, "embeddings.token_type_embeddings.weight"), [tokenTypeEmbedding.weight.rows, tokenTypeEmbedding.weight.cols],
                 &tokenTypeEmbedding.weight.storage)
        try embeddingNorm.visitParameters(prefix: join(prefix, "embeddings.LayerNorm"), body)
        for i in layers.indices {
            try layers[i].visitParameters(prefix: join(prefix, "encoder.layer.\(i)"), body)
        }
    }
}

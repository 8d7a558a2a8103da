/// DecoderSpec: the Transformer decoder with every formula executable.
///
/// `import DecoderSpec` brings in every concept module, in the order of the data flow
/// (docs/architecture.md): tensors and errors, kernels, embedding, positional encoding, masking,
/// attention, file formats, tokenizers, layers, decoding, models, metrics, the errata, training, the applications
/// that training runs (NER, translation) and the figures.
@_exported import TensorCore
@_exported import Kernels
@_exported import Embedding
@_exported import PositionalEncoding
@_exported import Masking
@_exported import Attention
@_exported import IO
@_exported import Tokenizers
@_exported import Layers
@_exported import Decoding
@_exported import Models
@_exported import Metrics
@_exported import Errata
@_exported import Training
@_exported import Applications
@_exported import Figures

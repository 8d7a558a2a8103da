import DecoderSpec
import Foundation

/// `decoder-spec embed --model DIR --text TEXT`: WordPiece ids and the mean-pooled, L2-normalized
/// sentence embedding of a BERT-style checkpoint (e.g. all-MiniLM-L6-v2 from `make fetch-data`).
enum SentenceEmbedding {
    static func run(modelDirectory: String, text: String, path: KernelPath, printAll: Bool) throws {
        let dir = URL(fileURLWithPath: modelDirectory)
        let model = try EncoderModel.load(directory: dir, path: path)
        let tokenizer = try WordPieceTokenizer.load(modelDirectory: dir, embeddingRows: model.config.vocabularySize)
        let ids = tokenizer.encode(text)
        let embedding = try model.sentenceEmbedding(ids)
        print("ids: [\(ids.map(String.init).joined(separator: ","))]")
        let shown = printAll ? embedding : Array(embedding.prefix(8))
        print("embedding [\(embedding.count)], mean-pooled and L2-normalized\(printAll ? "" : ", first 8"):")
        print("[" + shown.map { String(format: "%.6f", $0) }.joined(separator: ", ") + (printAll ? "]" : ", …]"))
    }
}

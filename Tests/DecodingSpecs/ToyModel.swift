import DecoderSpec

/// A tiny model with exactly known logits: the next-token logits depend on the last token and the
/// position, from a seeded table. Its "cache" is the sequence read so far, so the cached and
/// uncached paths are different code reaching the same numbers.
struct ToyModel: AutoregressiveModel {
    let vocabularySize: Int
    let contextLength: Int
    let table: [[Float]]  // [(V · contextLength), V]

    init(vocabularySize: Int, contextLength: Int, seed: UInt64, scale: Float = 3) {
        self.vocabularySize = vocabularySize
        self.contextLength = contextLength
        var rng = SeededRNG(seed: seed)
        table = (0..<(vocabularySize * contextLength)).map { _ in
            (0..<vocabularySize).map { _ in rng.uniform(-scale, scale) }
        }
    }

    func row(last: Int, position: Int) -> [Float] { table[position * vocabularySize + last] }

    func makeCache() -> [Int] { [] }

    func logits(appending tokens: [Int], to cache: inout [Int]) throws -> [Float] {
        cache += tokens
        guard cache.count <= contextLength else {
            throw DecoderSpecError.invalidArgument(what: "sequence of \(cache.count)", reason: "exceeds context \(contextLength)")
        }
        return row(last: cache[cache.count - 1], position: cache.count - 1)
    }

    func logits(forSequence sequence: [Int]) throws -> [Float] {
        row(last: sequence[sequence.count - 1], position: sequence.count - 1)
    }
}

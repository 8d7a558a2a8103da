// The fuzz harnesses (docs/reliability.md) and the spec that replays their committed inputs.
//
// One file, two builds: `swift test` compiles it into IOSpecs (the spec below replays every file
// under fuzz/<target>/seeds and fuzz/<target>/regressions); scripts/fuzz compiles the same file
// with -DDECODERSPEC_FUZZ into each libFuzzer binary (with copies of Sources/TensorCore,
// Sources/IO, Sources/Tokenizers, Sources/Kernels and the config reader as one module, and fuzz/<target>/main.swift as the entry point). So a regression
// input runs through exactly the reader calls and invariants that found it. See docs/reliability.md.
#if DECODERSPEC_FUZZ
import Foundation
#else
import DecoderSpec
import Foundation
import Testing
#endif

/// One libFuzzer target per reader.
enum FuzzTarget: String, CaseIterable, Sendable {
    case safetensors, conll, wordpiece, bpe, config, sqlite
}

/// A reader broke one of its own invariants (a logic bug, not a rejected input).
struct FuzzInvariantViolation: Error, CustomStringConvertible {
    let target: FuzzTarget
    let message: String
    var description: String { "\(target.rawValue) invariant violated: \(message)" }
}

/// The harnesses. Each reads `bytes` through one reader's public API; a rejected input throws
/// `DecoderSpecError` (fine), a broken invariant throws `FuzzInvariantViolation`, and a call that
/// must succeed but throws is a violation too. Anything else (another error type, a trap, a leak,
/// a hang) is a bug.
enum FuzzHarness {
    static func run(_ target: FuzzTarget, _ bytes: [UInt8]) throws {
        switch target {
        case .safetensors: try safetensors(bytes)
        case .conll: try conll(bytes)
        case .wordpiece: try wordpiece(bytes)
        case .bpe: try bpe(bytes)
        case .config: try config(bytes)
        case .sqlite: try sqlite(bytes)
        }
    }

    /// libFuzzer's entry: rejection returns normally; a violation or a foreign error traps, so
    /// libFuzzer saves the input to fuzz-artifacts/.
    static func fuzzOne(_ target: FuzzTarget, _ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
        do { try run(target, bytes) } catch is DecoderSpecError {} catch { fatalError("\(error)") }
        return 0
    }

    static func check(_ target: FuzzTarget, _ condition: Bool, _ message: @autoclosure () -> String) throws {
        if !condition { throw FuzzInvariantViolation(target: target, message: message()) }
    }

    /// `body` must succeed on an input the reader accepted: any error is a violation.
    static func must<T>(_ target: FuzzTarget, _ what: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch { throw FuzzInvariantViolation(target: target, message: "\(what) threw \(error)") }
    }

    /// The input cut at the first `separator` bytes (up to `parts` pieces; the last takes the rest).
    static func sections(_ bytes: [UInt8], separator: UInt8, parts: Int) -> [[UInt8]] {
        var out = bytes.split(separator: separator, maxSplits: parts - 1, omittingEmptySubsequences: false).map(Array.init)
        while out.count < parts { out.append([]) }
        return out
    }

    // MARK: safetensors

    /// Open; every tensor readable as raw bytes, floats (checked against an independent
    /// little-endian decode for integer/BOOL/F32), integers (integer dtypes only) and a matrix
    /// (rank 1 or 2 only); then serialize what was read as F32 and read it back: same names,
    /// shapes, metadata and bit-identical values.
    static func safetensors(_ bytes: [UInt8]) throws {
        let t = FuzzTarget.safetensors
        let file = try SafeTensorsFile(bytes: bytes)
        try check(t, file.names.count == file.tensors.count && Set(file.names).count == file.names.count, "names \(file.names) vs \(file.tensors.count) entries")
        var read: [(name: String, shape: [Int], values: [Float])] = []
        for name in file.names {
            let info = try must(t, "info(\"\(name)\")") { try file.info(name) }
            let raw = Array(try must(t, "rawBytes(\"\(name)\")") { try file.rawBytes(name) })
            try check(t, raw.count == info.elementCount * info.dtype.byteSize, "\(name): \(raw.count) raw bytes for \(info.shape) \(info.dtype)")
            let (shape, values) = try must(t, "floats(\"\(name)\")") { try file.floats(name) }
            try check(t, shape == info.shape && values.count == info.elementCount, "\(name): floats gave \(values.count) values, shape \(shape)")
            // Independent decode of the exactly-representable cases.
            func le(_ i: Int, _ n: Int) -> UInt64 { (0..<n).reduce(UInt64(0)) { $0 | UInt64(raw[i * n + $1]) << (8 * UInt64($1)) } }
            for i in 0..<values.count {
                let expected: Float?
                switch info.dtype {
                case .bool: expected = raw[i] != 0 ? 1 : 0
                case .u8: expected = Float(raw[i])
                case .i8: expected = Float(Int8(bitPattern: raw[i]))
                case .u16: expected = Float(UInt16(le(i, 2)))
                case .i16: expected = Float(Int16(bitPattern: UInt16(le(i, 2))))
                case .u32: expected = Float(UInt32(le(i, 4)))
                case .i32: expected = Float(Int32(bitPattern: UInt32(le(i, 4))))
                case .u64: expected = Float(le(i, 8))
                case .i64: expected = Float(Int64(bitPattern: le(i, 8)))
                case .f32: expected = Float(bitPattern: UInt32(le(i, 4)))
                default: expected = nil
                }
                if let expected {
                    try check(t, expected.bitPattern == values[i].bitPattern, "\(name)[\(i)] (\(info.dtype)): floats gave \(values[i]), the bytes say \(expected)")
                }
            }
            if info.dtype.isFloatingPoint {
                do {
                    _ = try file.integers(name)
                    try check(t, false, "integers(\"\(name)\") accepted a \(info.dtype) tensor")
                } catch DecoderSpecError.invalidArgument {}
            } else {
                do {
                    let (ishape, ints) = try file.integers(name)
                    try check(t, ishape == info.shape && ints.count == values.count, "\(name): integers gave \(ints.count) values")
                    for i in ints.indices { try check(t, Float(ints[i]) == values[i], "\(name)[\(i)]: integers \(ints[i]) vs floats \(values[i])") }
                } catch DecoderSpecError.invalidArgument where info.dtype == .u64 {}  // a value above Int64.max
            }
            do {
                let m = try file.matrix(name)
                try check(t, info.shape.count == 2 || info.shape.count == 1, "matrix(\"\(name)\") accepted rank \(info.shape.count)")
                let (r, c) = info.shape.count == 2 ? (info.shape[0], info.shape[1]) : (1, info.shape[0])
                try check(t, m.rows == r && m.cols == c, "matrix(\"\(name)\") is \(m.rows)×\(m.cols) for shape \(info.shape)")
            } catch DecoderSpecError.shapeMismatch {
                try check(t, info.shape.count != 2 && info.shape.count != 1, "matrix(\"\(name)\") refused rank \(info.shape.count)")
            }
            read.append((name, shape, values))
        }
        do {
            _ = try file.info("\u{0}absent")
            try check(t, false, "info() found a tensor that is not in the file")
        } catch DecoderSpecError.malformedFile {}
        guard !file.names.contains("") else {
            // Empty names are legal in a header but not for the writer, which must refuse them.
            do {
                _ = try SafeTensorsFile.serialize(read, metadata: file.metadata)
                try check(t, false, "serialize accepted an empty tensor name")
            } catch DecoderSpecError.invalidArgument {}
            return
        }
        let data = try must(t, "serialize") { try SafeTensorsFile.serialize(read, metadata: file.metadata) }
        let again = try must(t, "re-reading the serialized file") { try SafeTensorsFile(data: data) }
        try check(t, again.metadata == file.metadata, "metadata \(again.metadata) after the round trip, was \(file.metadata)")
        try check(t, Set(again.names) == Set(file.names) && again.names.count == file.names.count, "names \(again.names) after the round trip, was \(file.names)")
        for (name, shape, values) in read {
            let (s2, v2) = try must(t, "floats(\"\(name)\") after the round trip") { try again.floats(name) }
            try check(t, again.tensors[name]?.dtype == .f32 && s2 == shape, "\(name): shape \(s2) after the round trip, was \(shape)")
            try check(t, v2.map(\.bitPattern) == values.map(\.bitPattern), "\(name): values changed in the round trip")
        }
    }

    // MARK: CoNLL

    /// The first byte's low bit picks the reader. CoNLLCorpus (CoNLL-2003 types, then any type):
    /// sentences non-empty, fields non-empty without spaces/tabs; tag conversions keep the length
    /// and the chunks (iob2 ∘ iob1 = iob2, iob1 ∘ iob2 = iob1, iob2 idempotent). CoNLLPredictions:
    /// parallel arrays, tags well-formed; serialized() then parse gives the same sentences.
    static func conll(_ bytes: [UInt8]) throws {
        let t = FuzzTarget.conll
        guard let selector = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        if selector & 1 == 0 {
            var corpus: CoNLLCorpus
            do { corpus = try CoNLLCorpus(bytes: body) } catch DecoderSpecError.malformedFile {
                corpus = try CoNLLCorpus(bytes: body, entityTypes: nil)
            }
            try check(t, corpus.documentCount >= 0 && (corpus.sentences.isEmpty || corpus.documentCount >= 1), "documentCount \(corpus.documentCount) with \(corpus.sentences.count) sentences")
            for (s, sentence) in corpus.sentences.enumerated() {
                try check(t, !sentence.tokens.isEmpty && sentence.line >= 1, "sentence \(s) is empty or has line \(sentence.line)")
                try check(t, sentence.document >= 0 && sentence.document < max(corpus.documentCount, 1), "sentence \(s) in document \(sentence.document) of \(corpus.documentCount)")
                for tok in sentence.tokens {
                    for f in [tok.token, tok.pos, tok.chunk, tok.ner] {
                        try check(t, !f.isEmpty && !f.unicodeScalars.contains(where: { $0 == " " || $0 == "\t" || $0 == "\n" }), "sentence \(s): field \"\(f)\"")
                    }
                }
            }
            let iob1 = try must(t, "tags(in: .iob1)") { try corpus.tags(in: .iob1) }
            let iob2 = try must(t, "tags(in: .iob2)") { try corpus.tags(in: .iob2) }
            for (s, sentence) in corpus.sentences.enumerated() {
                try check(t, iob1[s].count == sentence.tokens.count && iob2[s].count == sentence.tokens.count, "sentence \(s): converted lengths differ")
                let back2 = try must(t, "convert iob1 → iob2") { try NERTags.convert(iob1[s], to: .iob2) }
                let back1 = try must(t, "convert iob2 → iob1") { try NERTags.convert(iob2[s], to: .iob1) }
                let again2 = try must(t, "convert iob2 → iob2") { try NERTags.convert(iob2[s], to: .iob2) }
                try check(t, back2 == iob2[s], "sentence \(s): iob2(iob1(tags)) = \(back2) ≠ iob2(tags) = \(iob2[s])")
                try check(t, back1 == iob1[s], "sentence \(s): iob1(iob2(tags)) = \(back1) ≠ iob1(tags) = \(iob1[s])")
                try check(t, again2 == iob2[s], "sentence \(s): iob2 is not idempotent")
                try check(t, chunks(iob2[s]) == chunks(sentence.tags), "sentence \(s): iob2 changed the chunks of \(sentence.tags)")
            }
        } else {
            let predictions = try CoNLLPredictions(bytes: body)
            for (s, sentence) in predictions.sentences.enumerated() {
                try check(t, !sentence.tokens.isEmpty && sentence.tokens.count == sentence.gold.count && sentence.gold.count == sentence.predicted.count, "sentence \(s): arrays of \(sentence.tokens.count), \(sentence.gold.count), \(sentence.predicted.count)")
                for tag in sentence.gold + sentence.predicted { try check(t, NERTags.split(tag) != nil, "sentence \(s): tag \"\(tag)\" accepted") }
            }
            let text: String
            do { text = try predictions.serialized() } catch DecoderSpecError.invalidArgument {
                // The writer refuses fields with whitespace the reader does not split on (e.g. U+00A0).
                let hasOtherWhitespace = predictions.sentences.contains { s in (s.tokens + s.gold + s.predicted).contains { $0.contains(where: \.isWhitespace) } }
                try check(t, hasOtherWhitespace, "serialized() refused a file the reader accepted")
                return
            }
            let again = try must(t, "re-reading serialized()") { try CoNLLPredictions(bytes: Array(text.utf8)) }
            try check(t, again.sentences.count == predictions.sentences.count, "\(again.sentences.count) sentences after the round trip, was \(predictions.sentences.count)")
            for (a, b) in zip(again.sentences, predictions.sentences) {
                try check(t, a.tokens.map { Array($0.utf8) } == b.tokens.map { Array($0.utf8) } && a.gold == b.gold && a.predicted == b.predicted, "round trip changed \(b) into \(a)")
            }
        }
    }

    /// Chunks (type, first, last) as conlleval reads a tag sequence in either scheme.
    static func chunks(_ tags: [String]) -> [String] {
        var out: [String] = []
        var open: (type: Substring, start: Int)?
        for (i, tag) in tags.enumerated() {
            let (prefix, type) = NERTags.split(tag) ?? ("O", "")
            if let o = open, prefix == "O" || prefix == "B" || o.type != type {
                out.append("\(o.type) \(o.start) \(i - 1)")
                open = nil
            }
            if prefix != "O", open == nil { open = (type, i) }
        }
        if let o = open { out.append("\(o.type) \(o.start) \(tags.count - 1)") }
        return out
    }

    // MARK: WordPiece

    /// Input = vocab.txt bytes, 0xFF, text. The vocab bytes are read as vocab.txt (accepted files
    /// re-serialize, with BOM and CRLF, to the same tokens). A tokenizer is built from the valid non-empty lines plus
    /// [UNK] [CLS] [SEP]; the text is encoded: ids in range, [CLS] … [SEP], every non-[UNK] word's
    /// pieces glue back to the word, encode(words:) keeps one entry per word, decode never throws,
    /// and for ASCII text the fast path equals the general Unicode path.
    static func wordpiece(_ bytes: [UInt8]) throws {
        let t = FuzzTarget.wordpiece
        let parts = sections(bytes, separator: 0xFF, parts: 2)
        if let vocab = try? WordPieceVocabulary(contentsOf: parts[0]) {
            // BOM + CRLF is the exact inverse of the reader (it strips one BOM and one "\r" per line),
            // so tokens that start with U+FEFF or end in "\r" survive too.
            let text = Array(("\u{FEFF}" + vocab.tokens.map { $0 + "\r\n" }.joined()).utf8)
            let again = try must(t, "re-reading the vocabulary") { try WordPieceVocabulary(contentsOf: text) }
            try check(t, again.tokens.map { Array($0.utf8) } == vocab.tokens.map { Array($0.utf8) }, "vocabulary changed in the round trip")
            for (i, token) in vocab.tokens.enumerated() { try check(t, vocab.id(of: token) == i, "id(of: \"\(token)\") ≠ \(i)") }
        }
        var tokens: [String] = []
        var seen = Set<[UInt8]>()
        for line in parts[0].split(separator: 0x0A) {
            guard let s = String(validating: line, as: UTF8.self), !s.isEmpty, seen.insert(Array(s.utf8)).inserted else { continue }
            tokens.append(s)
        }
        for special in ["[UNK]", "[CLS]", "[SEP]"] where seen.insert(Array(special.utf8)).inserted { tokens.append(special) }
        let vocabulary = try must(t, "WordPieceVocabulary(tokens:)") { try WordPieceVocabulary(tokens: tokens) }
        let lowercase = (parts[1].first ?? 0) & 1 == 0
        let tokenizer = try must(t, "WordPieceTokenizer") { try WordPieceTokenizer(vocabulary: vocabulary, lowercase: lowercase, maxInputCharsPerWord: 24) }
        let text = String(decoding: parts[1], as: UTF8.self)
        let ids = tokenizer.encode(text)
        try check(t, ids.count >= 2 && ids.first == tokenizer.clsID && ids.last == tokenizer.sepID, "encode is not [CLS] … [SEP]: \(ids)")
        try check(t, ids.allSatisfy { $0 >= 0 && $0 < vocabulary.count }, "an id out of range in \(ids)")
        _ = try must(t, "decode") { try tokenizer.decode(ids) }
        let words = tokenizer.basic.tokenize(text)
        for word in words where !WordPieceTokenizer.specialTokens.contains(word) {
            let pieces = tokenizer.wordPieceIDs(word)
            try check(t, !pieces.isEmpty, "word \"\(word)\" has no pieces")
            if pieces == [tokenizer.unknownID] { continue }
            let glued = pieces.enumerated().map { i, id in
                let token = vocabulary.tokens[id]
                return i == 0 ? Substring(token) : token.dropFirst(2)
            }.joined()
            try check(t, Array(glued.utf8) == Array(word.utf8), "pieces of \"\(word)\" glue to \"\(glued)\"")
        }
        let split = text.split(separator: " ").map(String.init)
        let (wordIDs, wordIndex) = tokenizer.encode(words: split)
        try check(t, wordIDs.count == wordIndex.count && wordIndex.first == .some(nil) && wordIndex.last == .some(nil), "encode(words:) index shape")
        let indices = wordIndex.compactMap { $0 }
        try check(t, indices == indices.sorted() && Set(indices) == Set(split.indices), "encode(words:) word indices \(indices) for \(split.count) words")
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            // U+FFFD is dropped by the cleaning step, so appending it only forces the general path.
            let general = tokenizer.basic.tokenize(text + "\u{FFFD}")
            try check(t, general == words, "ASCII fast path \(words) ≠ general path \(general)")
        }
    }

    // MARK: BPE

    /// Input = vocab.json, 0xFF, merges.txt, 0xFF, text. vocab.json and merges.txt are parsed
    /// (an accepted vocab.json re-serializes to the same tokens). A tokenizer is built from the
    /// 256 byte symbols, the parsed tokens, and every merge's parts and result; it must be
    /// accepted unless a merge part is present only as a canonically equal twin with other scalars. Then for the text and its NFD and NFC spellings: tokenize = encode's tokens, the
    /// batch encode equals encode, and decode(encode(x)) == x byte for byte (the documented
    /// lossless round trip).
    static func bpe(_ bytes: [UInt8]) throws {
        let t = FuzzTarget.bpe
        let parts = sections(bytes, separator: 0xFF, parts: 3)
        let parsedTokens = (try? BPETokenizer.parseVocabJSON(parts[0])) ?? []
        let parsedMerges = (try? BPETokenizer.parseMerges(parts[1])) ?? []
        var tokens = ByteLevel.byteToScalar.map { String($0) }
        var seen = Set(tokens)  // canonical equivalence, the tokenizer's notion of a duplicate
        func add(_ s: String) { if seen.insert(s).inserted { tokens.append(s) } }
        parsedTokens.forEach(add)
        for (a, b) in parsedMerges { add(a); add(b); add(a + b) }
        // A merge part whose exact spelling is missing (only a canonically equal twin is there) must be refused.
        let exact = Set(tokens.map { Array($0.utf8) })
        let twinOnly = parsedMerges.contains { a, b in [a, b, a + b].contains { !exact.contains(Array($0.utf8)) } }
        // A part ending in "\r" parses (the reader strips one "\r") but merges.txt could not hold it.
        let unwritable = parsedMerges.contains { a, b in [a, b].contains { $0.unicodeScalars.contains { $0 == " " || $0 == "\n" || $0 == "\r" } } }
        let tokenizer: BPETokenizer
        do { tokenizer = try BPETokenizer(tokens: tokens, merges: parsedMerges) } catch let error as DecoderSpecError {
            try check(t, twinOnly || unwritable, "BPETokenizer(tokens:merges:) refused a valid vocabulary: \(error)")
            return
        }
        try check(t, !twinOnly, "BPETokenizer(tokens:merges:) accepted a merge part present only as a canonically equal twin")
        try check(t, !unwritable, "BPETokenizer(tokens:merges:) accepted a merge part merges.txt cannot hold")
        if !parsedTokens.isEmpty {
            let again = try must(t, "parseVocabJSON(vocabJSON)") { try BPETokenizer.parseVocabJSON(Array(tokenizer.vocabJSON.utf8)) }
            try check(t, again.map { Array($0.utf8) } == tokens.map { Array($0.utf8) }, "vocab.json round trip changed the tokens")
            let merges = try must(t, "parseMerges(mergesText)") { try BPETokenizer.parseMerges(Array(tokenizer.mergesText.utf8)) }
            try check(t, merges.map { [$0.0, $0.1] } == parsedMerges.map { [$0.0, $0.1] }, "merges.txt round trip changed the merges")
        }
        let text = String(decoding: parts[2], as: UTF8.self)
        let pieces = ByteLevel.preTokenize(text)
        try check(t, Array(pieces.joined().utf8) == Array(text.utf8), "preTokenize lost text")
        let symbols = tokenizer.tokenize(text)
        let ids = tokenizer.encode(text)
        try check(t, symbols.count == ids.count && zip(symbols, ids).allSatisfy { tokenizer.tokens[$1] == $0 }, "tokenize and encode disagree")
        // The batch encoder memoizes pieces: the NFC and NFD spellings are equal Strings but
        // different bytes, so each must still encode (and decode) as itself.
        let variants = [text, text.decomposedStringWithCanonicalMapping, text.precomposedStringWithCanonicalMapping]
        let single = variants.map { tokenizer.encode($0) }
        try check(t, single[0] == ids, "encode is not deterministic")
        try check(t, tokenizer.encode(variants + [text]) == single + [ids], "batch encode differs from encode")
        for (variant, variantIDs) in zip(variants, single) {
            let decoded = try must(t, "decode") { try tokenizer.decode(variantIDs) }
            try check(t, Array(decoded.utf8) == Array(variant.utf8), "decode(encode(\(variant.debugDescription))) = \(decoded.debugDescription)")
        }
    }

    // MARK: config

    /// The JSON parser (accepted documents serialize and re-parse to the same value), then
    /// the BERT and GPT-2 config readers: accepted configs have positive sizes, heads dividing the width
    /// and `ignoredKeys` drawn from the file's keys.
    static func config(_ bytes: [UInt8]) throws {
        let t = FuzzTarget.config
        if let value = try? JSONValue.parse(bytes, path: "<fuzz>") {
            let again = try must(t, "re-parsing serialized") { try JSONValue.parse(Array(value.serialized.utf8), path: "<fuzz>") }
            try check(t, again == value && again.serialized == value.serialized, "JSON round trip changed the value")
        }
        var keys: [String] = []
        if case .object(let k, _)? = try? JSONValue.parse(bytes, path: "<fuzz>") { keys = k }
        for schema in [HuggingFaceSchema.bert, .gpt2] {
            guard let (c, ignored) = try? TransformerConfig.huggingFace(json: bytes, schema: schema) else { continue }
            try check(t, [c.vocabularySize, c.contextLength, c.modelWidth, c.heads, c.layers, c.feedForwardWidth].allSatisfy { $0 > 0 }
                      && c.tokenTypes >= 0, "\(schema.modelType) sizes not positive: \(c)")
            try check(t, c.modelWidth % c.heads == 0 && c.layerNormEpsilon > 0 && c.layerNormEpsilon.isFinite, "\(schema.modelType) config \(c)")
            try check(t, ignored.allSatisfy(keys.contains) && !ignored.contains(where: schema.requiredKeys.contains),
                      "\(schema.modelType) ignoredKeys \(ignored)")
        }
    }

    // MARK: SQLite

    /// Open; read sqlite_master; scan every table it names (at most 8). A filtered scan
    /// (column c, accept all) yields the same rows as the plain scan; a reject-all filter yields
    /// only rows too short to have column c. rows(ofTable:) equals the scan of its root page.
    static func sqlite(_ bytes: [UInt8]) throws {
        let t = FuzzTarget.sqlite
        let db = try SQLiteDatabase(data: Data(bytes))
        try check(t, db.pageSize >= 512 && db.pageCount == bytes.count / db.pageSize, "page size \(db.pageSize), \(db.pageCount) pages")
        var master: [[SQLiteValue]] = []
        try db.scanTable(rootPage: 1) { _, values in master.append(values); return true }
        var scanned = 0
        for row in master where row.count >= 4 && row[0].text == "table" {
            guard let name = row[1].text, let root = row[3].integer, scanned < 8 else { continue }
            scanned += 1
            var plain: [[SQLiteValue]] = []
            do { try db.scanTable(rootPage: Int(root)) { _, v in plain.append(v); return true } } catch is DecoderSpecError { continue }
            for column in [0, 2] {
                var all: [[SQLiteValue]] = []
                try must(t, "filtered scan of \"\(name)\" (column \(column), accept all)") {
                    try db.scanTable(rootPage: Int(root), filter: (column, { _ in true })) { _, v in all.append(v); return true }
                }
                try check(t, comparable(all) == comparable(plain), "table \"\(name)\": accept-all filter on column \(column) gave \(all.count) rows, the plain scan \(plain.count)")
                var none: [[SQLiteValue]] = []
                try must(t, "filtered scan of \"\(name)\" (column \(column), reject all)") {
                    try db.scanTable(rootPage: Int(root), filter: (column, { _ in false })) { _, v in none.append(v); return true }
                }
                try check(t, comparable(none) == comparable(plain.filter { $0.count <= column }), "table \"\(name)\": reject-all filter kept \(none.count) rows")
            }
            if let rows = try? db.rows(ofTable: name), db.rowsRootMatches(name, root: Int(root), master: master) {
                try check(t, comparable(rows) == comparable(plain), "rows(ofTable: \"\(name)\") differs from the scan of its root page")
            }
        }
    }
}

/// Rows with REAL values as bit patterns, so a NaN equals itself (SQLiteValue's == follows Double's).
private func comparable(_ rows: [[SQLiteValue]]) -> [[String]] {
    rows.map { $0.map { v in if case .real(let d) = v { return "real \(d.bitPattern)" } else { return "\(v)" } } }
}

extension SQLiteDatabase {
    /// True when `name`'s first "table" entry in sqlite_master has root `root` (rows(ofTable:) uses the first).
    fileprivate func rowsRootMatches(_ name: String, root: Int, master: [[SQLiteValue]]) -> Bool {
        master.first { $0.count >= 4 && $0[0].text == "table" && $0[1].text == name }?[3].integer == Int64(root)
    }
}

#if !DECODERSPEC_FUZZ
/// Replays every committed fuzz input (seeds and the crashing inputs found and fixed, under
/// fuzz/<target>/seeds and fuzz/<target>/regressions) through its target's harness in-process:
/// each must be accepted (with the target's invariants holding) or rejected with a
/// DecoderSpecError — never a trap or another error type.
@Suite("IO: fuzz regression inputs (fuzz/<target>/seeds and regressions)")
struct FuzzRegressionSpecs {
    static let fuzzRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fuzz")

    static func inputs(_ target: FuzzTarget) -> [URL] { inputs(named: target.rawValue) }

    /// The committed inputs of the target named `name` (this file's targets and LibraryFuzzHarnesses.swift's).
    static func inputs(named name: String) -> [URL] {
        ["seeds", "regressions"].flatMap { folder -> [URL] in
            let dir = fuzzRoot.appendingPathComponent(name).appendingPathComponent(folder)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
            return names.filter { !$0.hasPrefix(".") }.sorted().map { dir.appendingPathComponent($0) }
        }
    }

    @Test("every target has committed seeds", arguments: FuzzTarget.allCases)
    func seedsExist(_ target: FuzzTarget) {
        #expect(!Self.inputs(target).isEmpty, "no inputs under \(Self.fuzzRoot.path)/\(target.rawValue)")
    }

    @Test("each committed input is accepted with the invariants holding, or rejected with DecoderSpecError", arguments: FuzzTarget.allCases)
    func replay(_ target: FuzzTarget) throws {
        for url in Self.inputs(target) {
            let bytes = Array(try Data(contentsOf: url))
            do {
                try FuzzHarness.run(target, bytes)
            } catch is DecoderSpecError {
                // rejected cleanly
            } catch {
                Issue.record("\(target.rawValue) \(url.lastPathComponent): \(error)")
            }
        }
    }
}
#endif

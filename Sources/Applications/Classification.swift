// Sequence classification on real labels: the genre of an English Bible verse, split by book; the
// majority-class and naive-Bayes baselines; the task `Trainer.train` runs on a `SequenceClassifier`
// (GPT-style or BERT-style trunk); accuracy and macro-F1. See docs/classification.md.
import Foundation
import IO
import Kernels
import Metrics
import Models
import TensorCore
import Training

/// The genre of each of the 66 books (1 = Genesis … 66 = Revelation, the database's numbering), a
/// fixed table in the usual Protestant grouping with two merges so that every genre has books to
/// train on and books held out: Acts goes with the gospels (the New Testament's narrative books)
/// and Revelation with the prophets (it is the one apocalypse, and a genre of one book cannot be both
/// trained and tested).
public enum BibleGenre: String, CaseIterable, Sendable {
    /// Genesis … Deuteronomy (1–5).
    case law
    /// Joshua … Esther (6–17).
    case history
    /// Job, Psalms, Proverbs, Ecclesiastes, Song of Songs (18–22).
    case wisdom
    /// Isaiah … Malachi (23–39) and Revelation (66).
    case prophets
    /// Matthew, Mark, Luke, John, Acts (40–44).
    case gospels
    /// Romans … Jude (45–65).
    case epistles

    /// The genre of book `book`, nil outside 1 … 66.
    public static func of(book: Int) -> BibleGenre? {
        switch book {
        case 1...5: return .law
        case 6...17: return .history
        case 18...22: return .wisdom
        case 23...39, 66: return .prophets
        case 40...44: return .gospels
        case 45...65: return .epistles
        default: return nil
        }
    }

    /// The class names in `allCases` order (the classifier's label indices).
    public static var labels: [String] { allCases.map(\.rawValue) }

    /// Held out for test, at least one book per genre: Leviticus (3); Ruth (8), Ezra (15);
    /// Ecclesiastes (21); Amos (30), Jonah (32); Mark (41); Galatians (48), 1 John (62). Ruth, Jonah
    /// and 1 John are the language model's test books too (`TranslationSplit.testBooks`).
    public static let testBooks: Set<Int> = [3, 8, 15, 21, 30, 32, 41, 48, 62]
    /// Held out for validation, one book per genre (two epistles): Numbers (4), Esther (17), Song of
    /// Songs (22), Micah (33), Acts (44), Philemon (57), Jude (65) — the last two the language model's
    /// validation books.
    public static let validBooks: Set<Int> = [4, 17, 22, 33, 44, 57, 65]
}

/// One verse with its genre.
public struct GenreExample: Sendable, Equatable {
    public var book: Int
    public var text: String
    /// Index into `BibleGenre.labels`.
    public var label: Int
}

/// The genre task's data: one Bible version's verses labelled by `BibleGenre`, split by book
/// (`BibleGenre.validBooks`, `.testBooks`), so no held-out book contributes a single training verse.
public struct GenreData: Sendable {
    public var train: [GenreExample]
    public var valid: [GenreExample]
    public var test: [GenreExample]
    public var labels: [String] { BibleGenre.labels }

    /// - Throws: `.invalidArgument` for a verse of a book outside 1 … 66; `.emptySequence` when a split is empty.
    public static func prepare(verses: [ParallelVerse], validBooks: Set<Int> = BibleGenre.validBooks,
                               testBooks: Set<Int> = BibleGenre.testBooks) throws -> GenreData {
        let (train, valid, test) = try BibleCorpus.split(verses, validBooks: validBooks, testBooks: testBooks)
        func labelled(_ vs: [ParallelVerse]) throws -> [GenreExample] {
            try vs.map { v in
                guard let genre = BibleGenre.of(book: v.book) else {
                    throw DecoderSpecError.invalidArgument(what: "book \(v.book) (chapter \(v.chapter), verse \(v.verse))", reason: "the genre table covers books 1 … 66")
                }
                return GenreExample(book: v.book, text: v.source, label: BibleGenre.allCases.firstIndex(of: genre)!)
            }
        }
        let data = GenreData(train: try labelled(train), valid: try labelled(valid), test: try labelled(test))
        guard !data.train.isEmpty, !data.valid.isEmpty, !data.test.isEmpty else { throw DecoderSpecError.emptySequence(what: "training, validation or test split") }
        return data
    }

    /// Verses per class, in label order.
    public static func classCounts(_ examples: [GenreExample]) -> [Int] {
        var counts = [Int](repeating: 0, count: BibleGenre.allCases.count)
        for e in examples { counts[e.label] += 1 }
        return counts
    }
}

/// Accuracy and macro-F1 of single-label predictions, with the per-class report.
public struct ClassificationScore: Sendable, Equatable {
    public var accuracy: Double
    /// The unweighted mean of the per-class F1 over the classes present in gold or prediction
    /// (scikit-learn's `f1_score(average="macro")`, `zero_division=0`).
    public var macroF1: Double
    public var report: ClassificationReport

    /// - Throws: `.shapeMismatch` when the counts differ; `.emptySequence` for no examples;
    ///   `.idOutOfRange` for a class index outside `labels`.
    public init(gold: [Int], predicted: [Int], labels: [String]) throws {
        guard !gold.isEmpty else { throw DecoderSpecError.emptySequence(what: "examples to score") }
        for (i, c) in (gold + predicted).enumerated() where c < 0 || c >= labels.count {
            throw DecoderSpecError.idOutOfRange(id: c, position: i % max(gold.count, 1), vocabularySize: labels.count)
        }
        report = try ClassificationReport(gold: [gold.map { labels[$0] }], predicted: [predicted.map { labels[$0] }])
        accuracy = Double(zip(gold, predicted).filter { $0 == $1 }.count) / Double(gold.count)
        macroF1 = report.macro.f1
    }

    public var line: String { String(format: "accuracy %.4f  macro-F1 %.4f", accuracy, macroF1) }
}

/// The majority-class baseline: every example gets the most frequent training class (the lowest
/// index on a tie).
public struct MajorityClassBaseline: Sendable, Equatable {
    public var label: Int

    /// - Throws: `.emptySequence` for no labels.
    public init(trainLabels: [Int]) throws {
        guard !trainLabels.isEmpty else { throw DecoderSpecError.emptySequence(what: "training labels") }
        var counts: [Int: Int] = [:]
        for l in trainLabels { counts[l, default: 0] += 1 }
        label = counts.max { ($0.value, -$0.key) < ($1.value, -$1.key) }!.key
    }

    public func predict(_ count: Int) -> [Int] { [Int](repeating: label, count: count) }
}

/// Multinomial naive Bayes on bag-of-words counts, with add-α (Laplace) smoothing:
///
///     log P(c | d) = log π_c + Σ_w n_w(d)·log θ_{c,w} − log Z(d)
///     π_c = N_c / N,    θ_{c,w} = (count(c, w) + α) / (Σ_w′ count(c, w′) + α·|V|)
///
/// N_c training documents of class c out of N, count(c, w) the occurrences of word w in them, V the
/// training vocabulary; a word never seen in training is skipped (as scikit-learn's
/// `CountVectorizer` + `MultinomialNB` do). Words: lower-cased runs of letters and digits.
public struct NaiveBayesBaseline: Sendable {
    public let classes: Int
    public let alpha: Double
    /// log π_c.
    public let logPrior: [Double]
    /// log θ_{c,w}, [classes][|V|].
    let logLikelihood: [[Double]]
    /// word → column.
    public let vocabulary: [String: Int]

    /// The words of a text: lower-cased maximal runs of letters and digits.
    public static func words(_ text: String) -> [String] {
        text.lowercased().split { !($0.isLetter || $0.isNumber) }.map(String.init)
    }

    /// - Throws: `.shapeMismatch` when documents and labels differ in count; `.emptySequence` for
    ///   no documents; `.idOutOfRange` for a label outside 0 ..< classes; `.invalidArgument` for α ≤ 0.
    public init(documents: [String], labels: [Int], classes: Int, alpha: Double = 1) throws {
        guard documents.count == labels.count else {
            throw DecoderSpecError.shapeMismatch(operation: "NaiveBayesBaseline", expected: "\(documents.count) labels", actual: "\(labels.count)")
        }
        guard !documents.isEmpty else { throw DecoderSpecError.emptySequence(what: "training documents") }
        guard alpha > 0, alpha.isFinite else { throw DecoderSpecError.invalidArgument(what: "α = \(alpha)", reason: "must be finite and > 0") }
        try Validate.positive(classes, "classes")
        var vocabulary: [String: Int] = [:], docs = [Int](repeating: 0, count: classes)
        var counts = [[Int: Int]](repeating: [:], count: classes)
        for (i, (text, c)) in zip(documents, labels).enumerated() {
            guard c >= 0 && c < classes else { throw DecoderSpecError.idOutOfRange(id: c, position: i, vocabularySize: classes) }
            docs[c] += 1
            for w in Self.words(text) {
                let column = vocabulary[w] ?? { let n = vocabulary.count; vocabulary[w] = n; return n }()
                counts[c][column, default: 0] += 1
            }
        }
        let v = Double(vocabulary.count)
        logLikelihood = counts.map { row in
            let total = Double(row.values.reduce(0, +))
            var out = [Double](repeating: log(alpha / (total + alpha * v)), count: vocabulary.count)
            for (w, n) in row { out[w] = log((Double(n) + alpha) / (total + alpha * v)) }
            return out
        }
        logPrior = docs.map { log(Double($0) / Double(documents.count)) }  // −∞ for a class with no document
        (self.classes, self.alpha, self.vocabulary) = (classes, alpha, vocabulary)
    }

    /// log π_c + Σ_w n_w·log θ_{c,w} for each class (the log joint; the posterior up to log Z(d)).
    public func logJoint(_ text: String) -> [Double] {
        var out = logPrior
        for w in Self.words(text) {
            guard let column = vocabulary[w] else { continue }
            for c in 0..<classes { out[c] += logLikelihood[c][column] }
        }
        return out
    }

    /// The class of highest posterior (the lowest index on a tie).
    public func predict(_ text: String) -> Int {
        let j = logJoint(text)
        var best = 0
        for c in 1..<classes where j[c] > j[best] { best = c }
        return best
    }
}

/// Sequence classification as a `TrainingTask`: mean cross-entropy over batches of sequences on a
/// `SequenceClassifier` (the whole model trained); validation is macro-F1 on held-out sequences.
public struct SequenceClassificationTask<Trunk: SequenceTrunk>: TrainingTask {
    public typealias Model = SequenceClassifier<Trunk>
    public var sequences: [[Int]]
    public var targets: [Int]
    public var validation: (sequences: [[Int]], targets: [Int])
    public var loss: CrossEntropyLoss
    public var path: KernelPath

    /// - Throws: `.shapeMismatch` when sequences and targets differ in count (either set).
    public init(sequences: [[Int]], targets: [Int], validation: (sequences: [[Int]], targets: [Int]) = ([], []),
                loss: CrossEntropyLoss, path: KernelPath = .optimized) throws {
        for (name, s, t) in [("training", sequences.count, targets.count), ("validation", validation.sequences.count, validation.targets.count)] where s != t {
            throw DecoderSpecError.shapeMismatch(operation: "SequenceClassificationTask \(name) set", expected: "\(s) targets (one per sequence)", actual: "\(t)")
        }
        (self.sequences, self.targets, self.validation, self.loss, self.path) = (sequences, targets, validation, loss, path)
    }

    public var exampleCount: Int { sequences.count }
    public func length(of example: Int) -> Int { sequences[example].count }

    public func lossAndGradient(_ model: Model, examples: [Int]) throws -> (loss: Double, gradient: Model, tokens: Int) {
        let batch = try ClassificationBatch(examples.map { sequences[$0] })
        let r = try model.lossAndGradient(batch, targets: examples.map { targets[$0] }, loss: loss, path: path)
        return (r.loss, r.gradient, batch.rows.tokenCount)
    }

    /// Macro-F1 on the validation set (higher is better); nil when there is none.
    public func validate(_ model: Model) throws -> Validation? {
        guard !validation.sequences.isEmpty else { return nil }
        let score = try ClassificationScore(gold: validation.targets, predicted: model.predict(validation.sequences, path: path), labels: model.labels)
        return Validation(metric: "valid macro-F1", value: score.macroF1, higherIsBetter: true, detail: String(format: "accuracy %.4f", score.accuracy))
    }
}

import ArgumentParser
import DecoderSpec
import Foundation

/// `decoder-spec attention`: scaled dot-product / multi-head attention on your own tensors.
/// See docs/attention.md ("Running it on your own tensors").
struct AttentionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Attention on q, k, v from a safetensors file; writes o and the weights (safetensors), optionally an SVG.",
        discussion: """
            Input tensors: q [Tq, d_model], k [Tk, d_model], v [Tk, d_v] (already projected).
            With --heads H the columns are split into H heads. Output tensors: o [Tq, d_v]
            (heads concatenated) and weights [H, Tq, Tk]. With --causal, query i sees keys
            j ≤ i + (Tk − Tq). Outputs are written atomically. See docs/attention.md.
            """)

    @Option(name: .long, help: "Input safetensors file with tensors q, k, v.")
    var input: String

    @Option(name: .long, help: "Output safetensors file (o, weights).")
    var output: String

    @Flag(name: .long, help: "Apply the causal (look-ahead) mask.")
    var causal = false

    @Option(name: .long, help: "Number of heads (must divide the widths of q, k, v).")
    var heads = 1

    @Option(name: .customLong("valid-length"), help: "Key padding: keys at positions ≥ this are masked.")
    var validLength: Int?

    @Option(name: .long, help: "Kernel path: naive, optimized or parallel (= optimized for attention).")
    var variant = "optimized"

    @Option(name: .long, help: "Also draw the attention weights as an SVG heat map to this file.")
    var svg: String?

    @Option(name: .long, help: "Comma-separated token labels for the SVG's axes, one per key (the queries take the last Tq).")
    var labels: String?

    /// `--labels` without `--svg` is a command-line error (exit 64).
    func validate() throws {
        if labels != nil && svg == nil { throw ValidationError("--labels needs --svg (they label the picture's axes)") }
    }

    func run() throws {
        do {
            guard let kernel = KernelPath(rawValue: variant) else {
                throw DecoderSpecError.invalidArgument(what: "--variant \(variant)", reason: "expected one of \(KernelPath.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let labelList = labels.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            // Checked before anything is written; an unreadable input is left to the job's own error.
            if let labelList, let keys = try? SafeTensorsFile.read(contentsOf: URL(fileURLWithPath: input)).shape("k").first, labelList.count != keys {
                throw DecoderSpecError.shapeMismatch(operation: "--labels", expected: "\(keys) labels (one per key)", actual: "\(labelList.count)")
            }
            let result = try AttentionFileJob.run(input: URL(fileURLWithPath: input), output: URL(fileURLWithPath: output),
                                                  causal: causal, heads: heads, validLength: validLength, path: kernel)
            print("o \(result.output.shape), weights [\(result.weights.count), \(result.weights[0].rows), \(result.weights[0].cols)] → \(output)")
            if let svg {
                var mask = causal ? AttentionMask.causal(queryOffset: max(0, result.weights[0].cols - result.weights[0].rows)) : .none
                if let validLength { mask = try mask.combined(with: .keyPadding(validLength: validLength)) }
                try AttentionFileJob.writeSVG(weights: result.weights, mask: mask,
                                              title: "attention weights (\(mask), \(heads) head\(heads == 1 ? "" : "s"))",
                                              labels: labelList,
                                              to: URL(fileURLWithPath: svg))
                print("weights picture → \(svg)")
            }
        }
    }
}

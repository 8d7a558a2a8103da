// swift-tools-version: 6.1
// DecoderSpec — the Transformer decoder, every formula executable, checkable and measurable.
// The target graph is the data flow of docs/architecture.md; it has no back-edges. Each target declares
// exactly the modules its files import (scripts/check-imports, run by Tests/FoundationSpecs).
import PackageDescription

/// Every module's Sources/<name>/README.md is documentation, neither a source nor a resource.
let readme = ["README.md"]

let package = Package(
    name: "DecoderSpec",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "DecoderSpec", targets: ["DecoderSpec"]),
        .library(name: "GSLOracle", targets: ["GSLOracle"]),
        .executable(name: "decoder-spec", targets: ["decoder-spec"]),
        .executable(name: "decoder-spec-bench", targets: ["decoder-spec-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // GSL, reached through pkg-config. Only the oracle links it, never the library.
        .systemLibrary(name: "CGSL", pkgConfig: "gsl", providers: [.apt(["libgsl-dev"])]),
        .target(name: "GSLOracle", dependencies: ["CGSL"], exclude: readme),

        // The library, in the order of the data flow.
        .target(name: "TensorCore", exclude: readme),
        .target(name: "CPrefetch", exclude: readme),
        .target(name: "Kernels", dependencies: ["TensorCore", "CPrefetch"], exclude: readme),
        .target(name: "Embedding", dependencies: ["TensorCore", "Kernels"], exclude: readme),
        .target(name: "PositionalEncoding", dependencies: ["TensorCore", "Kernels"], exclude: readme),
        .target(name: "Masking", dependencies: ["TensorCore"], exclude: readme),
        .target(name: "Attention", dependencies: ["TensorCore", "Kernels", "Masking"], exclude: readme),
        .target(name: "IO", dependencies: ["TensorCore"], exclude: readme),
        .target(name: "Tokenizers", dependencies: ["TensorCore", "IO"], exclude: readme),
        .target(name: "Layers", dependencies: ["TensorCore", "Kernels", "PositionalEncoding", "Masking", "Attention"], exclude: readme),
        .target(name: "Decoding", dependencies: ["TensorCore"], exclude: readme),
        .target(name: "Models", dependencies: ["TensorCore", "Kernels", "Embedding", "PositionalEncoding", "IO", "Layers", "Decoding"],
                exclude: readme),
        .target(name: "Metrics", dependencies: ["TensorCore"], exclude: readme),
        .target(name: "Training", dependencies: ["TensorCore", "Kernels", "Embedding", "PositionalEncoding", "Masking", "Layers", "Models",
                                                 "IO"], exclude: readme),
        // The applications: recipes (NER, translation) that Training's one loop runs.
        .target(name: "Applications", dependencies: ["TensorCore", "Kernels", "Layers", "Models", "IO", "Tokenizers", "Metrics",
                                                     "Decoding", "Training"], exclude: readme),
        .target(name: "Errata", dependencies: ["TensorCore", "Kernels", "PositionalEncoding", "Masking", "Attention", "Layers", "Models",
                                               "Metrics"], exclude: readme),
        // Figures: deterministic SVG (heatmaps, line and bar charts, trees) for the notebooks, the CLI and docs/figures.
        .target(name: "Figures", dependencies: ["TensorCore", "IO"], exclude: readme),
        // The bug zoo (docs/bug-zoo.md): real-world bugs as variants of the correct code. Deliberately NOT
        // re-exported by DecoderSpec and not reachable from the CLI; only the specs use it (`make zoo` runs BugZooSpecs).
        .target(name: "BugZoo", dependencies: ["TensorCore", "Kernels", "PositionalEncoding", "Masking", "Attention",
                                               "Layers", "Decoding", "Models", "Metrics", "Training"], exclude: readme),
        .target(name: "DecoderSpec", dependencies: [
            "TensorCore", "Kernels", "Embedding", "PositionalEncoding", "Masking", "Attention",
            "IO", "Tokenizers", "Layers", "Decoding", "Models", "Metrics", "Errata", "Training", "Applications", "Figures",
        ], exclude: readme),

        // Tools.
        .target(name: "NotebookRunner", exclude: readme),
        .executableTarget(name: "decoder-spec", dependencies: [
            "DecoderSpec", "NotebookRunner",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], exclude: readme),
        .executableTarget(name: "decoder-spec-bench", dependencies: ["DecoderSpec", "GSLOracle"], exclude: readme),

        // The executable spec: one suite target per concept.
        // The whole-model reference forward: Double + GSL only, so it cannot call library code.
        .target(name: "ReferenceModel", dependencies: ["GSLOracle"], path: "Tests/ReferenceModel", exclude: readme),
        .target(name: "SpecSupport", dependencies: ["TensorCore", "Kernels", "Masking", "Layers", "Decoding", "Models", "GSLOracle",
                                                    "DecoderSpec", "BugZoo", "NotebookRunner", "ReferenceModel"],
                path: "Tests/SpecSupport"),
        .testTarget(name: "FoundationSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "EmbeddingSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "PositionalEncodingSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "KernelSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        // AttentionFileSpecs checks the CLI's attention-file job (Sources/decoder-spec/AttentionFileJob.swift).
        .testTarget(name: "AttentionSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle", "decoder-spec"]),
        .testTarget(name: "IOSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "MetricsSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "ModelSpecs", dependencies: ["SpecSupport", "ReferenceModel", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "DecodingSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "TrainingSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "NotebookSpecs", dependencies: ["NotebookRunner"]),
        .testTarget(name: "FigureSpecs", dependencies: ["Figures", "TensorCore"]),
        .testTarget(name: "ErrataSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "BugZooSpecs", dependencies: ["SpecSupport", "BugZoo", "DecoderSpec"]),
        .testTarget(name: "HardeningSpecs", dependencies: ["SpecSupport", "DecoderSpec"]),
        .testTarget(name: "WholeModelSpecs", dependencies: ["SpecSupport", "ReferenceModel", "DecoderSpec", "GSLOracle"]),
    ],
    swiftLanguageModes: [.v6]
)

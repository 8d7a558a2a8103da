// swift-tools-version: 6.1
// DecoderSpec — the Transformer decoder, every formula executable, checkable and measurable.
// The target graph is the data flow of docs/architecture.md; it has no back-edges.
import PackageDescription

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
        .target(name: "GSLOracle", dependencies: ["CGSL"]),

        // The library, in the order of the data flow.
        .target(name: "TensorCore"),
        .target(name: "Kernels", dependencies: ["TensorCore"]),
        .target(name: "Embedding", dependencies: ["TensorCore", "Kernels"]),
        .target(name: "PositionalEncoding", dependencies: ["TensorCore", "Kernels"]),
        .target(name: "Masking", dependencies: ["TensorCore"]),
        .target(name: "Attention", dependencies: ["TensorCore", "Kernels", "Masking"]),
        .target(name: "IO", dependencies: ["TensorCore"]),
        .target(name: "Layers", dependencies: ["TensorCore", "Kernels", "Masking", "Attention", "Embedding", "PositionalEncoding", "IO"]),
        .target(name: "Decoding", dependencies: ["TensorCore", "Kernels", "Layers"]),
        .target(name: "Models", dependencies: ["TensorCore", "Kernels", "Embedding", "PositionalEncoding", "IO", "Layers", "Decoding"]),
        .target(name: "Metrics", dependencies: ["TensorCore"]),
        .target(name: "Training", dependencies: ["TensorCore", "Kernels", "Embedding", "PositionalEncoding", "Masking", "Layers", "Models", "IO", "Metrics", "Decoding"]),
        .target(name: "Errata", dependencies: ["TensorCore", "Kernels", "PositionalEncoding", "Attention"]),
        // The bug zoo (docs/bug-zoo.md): real-world bugs as variants of the correct code. Deliberately NOT
        // re-exported by DecoderSpec and not reachable from the CLI; only specs and `make zoo` use it.
        .target(name: "BugZoo", dependencies: ["TensorCore", "Kernels", "PositionalEncoding", "Masking", "Attention",
                                               "Layers", "Decoding", "Models", "Metrics", "Training"]),
        .target(name: "DecoderSpec", dependencies: [
            "TensorCore", "Kernels", "Embedding", "PositionalEncoding", "Masking", "Attention",
            "IO", "Layers", "Decoding", "Models", "Metrics", "Errata", "Training",
        ]),

        // Tools.
        .target(name: "NotebookRunner"),
        .executableTarget(name: "decoder-spec", dependencies: [
            "DecoderSpec", "NotebookRunner",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "decoder-spec-bench", dependencies: ["DecoderSpec", "GSLOracle"]),
        .executableTarget(name: "decoder-spec-zoo", dependencies: ["BugZoo", "SpecSupport", "DecoderSpec"]),

        // The executable spec: one suite target per concept.
        // The whole-model reference forward: Double + GSL only, so it cannot call library code.
        .target(name: "ReferenceModel", dependencies: ["GSLOracle"], path: "Tests/ReferenceModel", exclude: ["README.md"]),
        .target(name: "SpecSupport", dependencies: ["TensorCore", "GSLOracle", "DecoderSpec", "BugZoo", "NotebookRunner", "ReferenceModel"],
                path: "Tests/SpecSupport"),
        .testTarget(name: "FoundationSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle", "NotebookRunner"]),
        .testTarget(name: "EmbeddingSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "PositionalEncodingSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "KernelSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "AttentionSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "IOSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "MetricsSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "ModelSpecs", dependencies: ["SpecSupport", "ReferenceModel", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "DecodingSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "TrainingSpecs", dependencies: ["SpecSupport", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "NotebookSpecs", dependencies: ["NotebookRunner"]),
        .testTarget(name: "BugZooSpecs", dependencies: ["SpecSupport", "BugZoo", "DecoderSpec", "GSLOracle"]),
        .testTarget(name: "HardeningSpecs", dependencies: ["SpecSupport", "DecoderSpec"]),
        .testTarget(name: "WholeModelSpecs", dependencies: ["SpecSupport", "ReferenceModel", "DecoderSpec", "GSLOracle"]),
    ],
    swiftLanguageModes: [.v6]
)

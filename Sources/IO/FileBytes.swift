import Foundation

/// Reads whole files for the readers of this module and the tokenizers. An empty file is returned
/// as empty `Data` without calling `Data(contentsOf:)`, which in this toolchain's Foundation (Swift
/// 6.3.1, Linux) leaks a 4 KB buffer for every empty file it reads — found by LeakSanitizer in
/// `make sanitize` and by the `resume` fuzz target (docs/reliability.md). Anything else, a missing
/// file or a directory included, goes to `Data(contentsOf:)` and fails as it always did.
public enum FileBytes {
    public static func read(_ url: URL, options: Data.ReadingOptions = []) throws -> Data {
        let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
        if attributes?[.type] as? FileAttributeType == .typeRegular, (attributes?[.size] as? NSNumber)?.intValue == 0 { return Data() }
        return try Data(contentsOf: url, options: options)
    }
}

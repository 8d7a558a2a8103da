import Foundation

/// Finds the project (the folder with `Package.swift` and `notebooks-md/`) so the CLI's notebook and
/// book commands work from any directory: first the given directory and its parents, then the
/// folders above the running executable (`<root>/.build/debug/decoder-spec`).
public enum ProjectRoot {
    public static func isRoot(_ url: URL) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: url.appendingPathComponent("Package.swift").path)
            && fm.fileExists(atPath: url.appendingPathComponent("notebooks-md").path)
    }

    /// The project root above `directory` or above `executable`, or nil.
    public static func locate(from directory: URL, executable: URL? = nil) -> URL? {
        for start in [directory, executable?.resolvingSymlinksInPath().deletingLastPathComponent()].compactMap({ $0 }) {
            var url = start.standardizedFileURL
            while true {
                if isRoot(url) { return url }
                let parent = url.deletingLastPathComponent()
                if parent.path == url.path { break }
                url = parent
            }
        }
        return nil
    }
}

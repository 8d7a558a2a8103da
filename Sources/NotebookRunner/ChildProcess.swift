import Foundation

/// Runs a child process to completion and returns its status and output. stdout and stderr go to
/// temporary files, read after the child exits: with pipes the parent must read while the child
/// runs, and when other code in the same process spawns or kills children (the specs do), SIGCHLD
/// interrupts those blocking reads — Foundation's `readDataToEndOfFile` traps on EINTR. Used by
/// the notebook runner and, through SpecSupport, by the specs that run the CLI or python3.
public enum ChildProcess {
    public struct Result: Sendable {
        public let status: Int32
        /// true when the child was killed by a signal (`status` is then the signal number).
        public let signalled: Bool
        public let stdout: String
        public let stderr: String
    }

    public static func run(_ executable: URL, _ arguments: [String], directory: URL? = nil,
                           environment: [String: String]? = nil) throws -> Result {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout"), errURL = scratch.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        if let directory { p.currentDirectoryURL = directory }
        if let environment { p.environment = environment }
        (p.standardOutput, p.standardError, p.standardInput) = (out, err, FileHandle.nullDevice)
        try p.run()
        p.waitUntilExit()
        try out.close()
        try err.close()
        return Result(status: p.terminationStatus, signalled: p.terminationReason == .uncaughtSignal,
                      stdout: try text(outURL), stderr: try text(errURL))
    }

    /// The file as UTF-8 text; an empty file is "" without `Data(contentsOf:)`, which leaks a 4 KB
    /// buffer per empty file in this toolchain's Foundation (Swift 6.3.1, Linux: found by
    /// LeakSanitizer in `make sanitize`, reproduced by a 3-line program).
    static func text(_ url: URL) throws -> String {
        let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
        return size == 0 ? "" : String(decoding: try Data(contentsOf: url), as: UTF8.self)
    }
}

import Foundation

/// Runs child processes for specs (the CLI, python3). Output goes to temporary files rather than
/// pipes: with several specs spawning and killing processes in parallel, SIGCHLD interrupts
/// blocking reads, and Foundation's `FileHandle.readDataToEndOfFile` traps on EINTR. Files need no
/// reader while the child runs, so nothing can be interrupted.
public enum Subprocess {
    public struct Result: Sendable {
        public let status: Int32
        /// true when the child was killed by a signal (`status` is then the signal number).
        public let signalled: Bool
        public let stdout: String
        public let stderr: String
    }

    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws -> Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("subprocess-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("stdout"), errURL = dir.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        if let environment { p.environment = environment }
        (p.standardOutput, p.standardError, p.standardInput) = (out, err, FileHandle.nullDevice)
        try p.run()
        p.waitUntilExit()
        try out.close()
        try err.close()
        return Result(status: p.terminationStatus, signalled: p.terminationReason == .uncaughtSignal,
                      stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                      stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }
}

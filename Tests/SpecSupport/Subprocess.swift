import Foundation
import NotebookRunner

/// Child processes for specs (the CLI, python3): `NotebookRunner.ChildProcess`, which collects
/// output through files so that parallel specs spawning and killing children cannot trap a read.
public typealias Subprocess = ChildProcess

extension ChildProcess {
    /// Starts `executable` with `arguments` and returns at once, its output discarded: for specs
    /// that kill the child mid-run (`kill -9` and resume, the checkpoint lock). The caller signals
    /// it or waits (`waitUntilExit()`) and reads `terminationReason`/`terminationStatus`.
    public static func launch(_ executable: URL, _ arguments: [String]) throws -> Process {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        (p.standardOutput, p.standardError) = (FileHandle.nullDevice, FileHandle.nullDevice)
        try p.run()
        return p
    }
}

import Foundation
import NotebookRunner

/// Child processes for specs (the CLI, python3): `NotebookRunner.ChildProcess`, which collects
/// output through files so that parallel specs spawning and killing children cannot trap a read.
public typealias Subprocess = ChildProcess

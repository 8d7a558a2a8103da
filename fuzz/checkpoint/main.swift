// libFuzzer target `checkpoint`: training checkpoints read by `TrainingCheckpoint.read`. The
// harness (`CheckpointFuzz`, structure-aware: a valid checkpoint damaged as the input says, and
// the invariants) is in Tests/IOSpecs/LibraryFuzzHarnesses.swift, which LibraryFuzzRegressionSpecs
// also runs over every committed seed and regression input. Built by scripts/fuzz.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    LibraryFuzzTarget.checkpoint.fuzzOne(data, size)
}

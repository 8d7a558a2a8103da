// libFuzzer entry point of the `wordpiece` target (built by scripts/fuzz). The harness and its
// invariants are FuzzHarness.wordpiece in Tests/IOSpecs/FuzzRegressionSpecs.swift, shared with the
// regression spec that replays fuzz/wordpiece/seeds and fuzz/wordpiece/regressions.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzHarness.fuzzOne(.wordpiece, data, size)
}

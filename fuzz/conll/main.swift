// libFuzzer entry point of the `conll` target (built by scripts/fuzz). The harness and its
// invariants are FuzzHarness.conll in Tests/IOSpecs/FuzzRegressionSpecs.swift, shared with the
// regression spec that replays fuzz/conll/seeds and fuzz/conll/regressions.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzHarness.fuzzOne(.conll, data, size)
}

// libFuzzer entry point of the `bpe` target (built by scripts/fuzz). The harness and its
// invariants are FuzzHarness.bpe in Tests/IOSpecs/FuzzRegressionSpecs.swift, shared with the
// regression spec that replays fuzz/bpe/seeds and fuzz/bpe/regressions.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzHarness.fuzzOne(.bpe, data, size)
}

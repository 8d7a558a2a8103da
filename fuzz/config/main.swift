// libFuzzer entry point of the `config` target (built by scripts/fuzz). The harness and its
// invariants are FuzzHarness.config in Tests/IOSpecs/FuzzRegressionSpecs.swift, shared with the
// regression spec that replays fuzz/config/seeds and fuzz/config/regressions.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzHarness.fuzzOne(.config, data, size)
}

// libFuzzer entry point of the `safetensors` target (built by scripts/fuzz). The harness and its
// invariants are FuzzHarness.safetensors in Tests/IOSpecs/FuzzRegressionSpecs.swift, shared with the
// regression spec that replays fuzz/safetensors/seeds and fuzz/safetensors/regressions.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzHarness.fuzzOne(.safetensors, data, size)
}

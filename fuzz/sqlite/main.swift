// libFuzzer entry point of the `sqlite` target (built by scripts/fuzz). The harness and its
// invariants are FuzzHarness.sqlite in Tests/IOSpecs/FuzzRegressionSpecs.swift, shared with the
// regression spec that replays fuzz/sqlite/seeds and fuzz/sqlite/regressions.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzHarness.fuzzOne(.sqlite, data, size)
}

// libFuzzer target `modeldir`: model directories (config.json + weights + tokenizer files) read by the loaders. The
// harness (`ModelDirectoryFuzz`, structure-aware: a valid directory of each kind damaged as the input says, and
// the invariants) is in Tests/IOSpecs/LibraryFuzzHarnesses.swift, which LibraryFuzzRegressionSpecs
// also runs over every committed seed and regression input. Built by scripts/fuzz.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    LibraryFuzzTarget.modeldir.fuzzOne(data, size)
}

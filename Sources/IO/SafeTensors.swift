import Foundation
import TensorCore

/// The element types a safetensors header may name, with their sizes in bytes.
///
/// Names are those of the Hugging Face format (`"F32"`, `"BF16"` …). Any other name is an
/// "unknown dtype" error naming the tensor.
public enum SafeTensorsDType: String, CaseIterable, Sendable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case f64 = "F64", i64 = "I64", u64 = "U64"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: return 1
        case .i16, .u16, .f16, .bf16: return 2
        case .i32, .u32, .f32: return 4
        case .f64, .i64, .u64: return 8
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .f8e5m2, .f8e4m3, .f16, .bf16, .f32, .f64: return true
        default: return false
        }
    }
}

/// Bit-level decoders for the narrow float formats (no reliance on a platform `Float16`).
public enum NarrowFloat {
    /// IEEE 754 binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
    /// value = (−1)^s · 2^(e−15) · (1 + m/1024) for 0 < e < 31; (−1)^s · 2^−14 · m/1024 for e = 0
    /// (subnormals); ±∞ / NaN for e = 31. Every binary16 value is exactly representable in Float.
    public static func f16(_ bits: UInt16) -> Float {
        let sign: UInt32 = UInt32(bits >> 15) << 31
        let exponent = Int((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))  // ±∞ or NaN (payload kept)
        }
        if exponent == 0 {
            let magnitude = Float(mantissa) * 0x1p-24  // m · 2^−24, exact
            return sign == 0 ? magnitude : -magnitude
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }

    /// bfloat16: the top 16 bits of a binary32, so decoding is a shift.
    public static func bf16(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// OCP FP8 E5M2 (bias 15, IEEE-like with ±∞ and NaN): the top byte of a binary16.
    public static func f8e5m2(_ bits: UInt8) -> Float { f16(UInt16(bits) << 8) }

    /// OCP FP8 E4M3FN (bias 7, no infinities; S.1111.111 is NaN; subnormals m · 2^−9).
    public static func f8e4m3(_ bits: UInt8) -> Float {
        let negative = bits & 0x80 != 0
        let exponent = Int((bits >> 3) & 0xF)
        let mantissa = Float(bits & 0x7)
        let magnitude: Float
        if exponent == 0xF && bits & 0x7 == 0x7 { return .nan }
        if exponent == 0 { magnitude = mantissa * 0x1p-9 } else { magnitude = (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1) }
        return negative ? -magnitude : magnitude
    }
}

/// A safetensors file held in memory and validated on open.
///
/// Layout (the Hugging Face format): an 8-byte little-endian unsigned header length N, then N
/// bytes of UTF-8 JSON — `{"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape":
/// [d0, …], "data_offsets": [begin, end]}, …}` — then the data region. Offsets are relative to the
/// data region's start (byte 8 + N). Validation follows the reference (Rust) reader: the header
/// is at most 100 MB and within the file; every tensor's byte range has exactly
/// `product(shape) · sizeof(dtype)` bytes; sorted by offset the ranges tile the data region with
/// no overlap, no gap and nothing after the last one. Any violation is
/// `DecoderSpecError.malformedFile` naming the tensor and the absolute byte offset. See docs/io.md.
public struct SafeTensorsFile: Sendable {
    /// One tensor's header entry.
    public struct TensorInfo: Equatable, Sendable {
        public let name: String
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Byte range within the data region (add `dataStart` for the file offset).
        public let dataOffsets: Range<Int>
        public var elementCount: Int { shape.reduce(1, *) }
    }

    /// The header-length limit (the reference reader's MAX_HEADER_SIZE).
    public static let maxHeaderBytes = 100_000_000

    /// Where the bytes came from, for messages ("<memory>" when read from bytes).
    public let path: String
    /// The `__metadata__` string map (empty when absent).
    public let metadata: [String: String]
    /// Tensor names in file order (by data offset).
    public let names: [String]
    /// Header entries by name.
    public let tensors: [String: TensorInfo]
    /// File offset of the data region: 8 + header length.
    public let dataStart: Int
    private let bytes: Data

    /// Reads and validates the file at `url`. A missing file is `.missingFile`.
    public static func read(contentsOf url: URL) throws -> SafeTensorsFile {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DecoderSpecError.missingFile(path: url.path, hint: "Check the path; run `make fetch-data` to fetch the real checkpoints into data/pkgs.")
        }
        let data: Data
        do { data = try FileBytes.read(url, options: .mappedIfSafe) } catch {
            throw DecoderSpecError.malformedFile(path: url.path, location: "byte 0", reason: "cannot read: \(error.localizedDescription)")
        }
        return try SafeTensorsFile(data: data, path: url.path)
    }

    /// Validates `bytes` as a safetensors file.
    public init(bytes: [UInt8], path: String = "<memory>") throws {
        try self.init(data: Data(bytes), path: path)
    }

    /// Validates `data` as a safetensors file.
    public init(data: Data, path: String = "<memory>") throws {
        let data = data.startIndex == 0 ? data : Data(data)  // rebase a slice so offsets are from 0
        self.path = path
        self.bytes = data
        func malformed(_ location: String, _ reason: String) -> DecoderSpecError {
            .malformedFile(path: path, location: location, reason: reason)
        }
        let fileSize = data.count
        guard fileSize >= 8 else {
            throw malformed("byte 0", "file is \(fileSize) bytes, shorter than the 8-byte header length")
        }
        var headerLength64: UInt64 = 0
        for i in 0..<8 { headerLength64 |= UInt64(data[i]) << (8 * UInt64(i)) }
        guard headerLength64 <= UInt64(SafeTensorsFile.maxHeaderBytes) else {
            throw malformed("byte 0", "header length \(headerLength64) exceeds the limit of \(SafeTensorsFile.maxHeaderBytes) bytes")
        }
        let headerLength = Int(headerLength64)
        guard 8 + headerLength <= fileSize else {
            throw malformed("byte 0", "header length \(headerLength) runs past the end of the \(fileSize)-byte file (truncated?)")
        }
        guard headerLength >= 2 else { throw malformed("byte 8", "header of \(headerLength) bytes cannot hold a JSON object") }
        guard data[8] == UInt8(ascii: "{") else {
            throw malformed("byte 8", "header must start with '{', found byte 0x\(String(data[8], radix: 16))")
        }
        let dataStart = 8 + headerLength
        self.dataStart = dataStart
        let header = try JSONValue.parse(data[8..<dataStart], path: path, byteOffset: 8)
        guard case .object(let keys, let members) = header else {
            throw malformed("byte 8", "header is not a JSON object")
        }

        var metadata: [String: String] = [:]
        var infos: [TensorInfo] = []
        for key in keys {
            let value = members[key]!
            if key == "__metadata__" {
                guard case .object(let mkeys, let mmembers) = value else {
                    throw malformed("header", "__metadata__ must be an object of strings, found \(value.kindName)")
                }
                for mk in mkeys {
                    guard case .string(let s) = mmembers[mk]! else {
                        throw malformed("header", "__metadata__[\"\(mk)\"] must be a string, found \(mmembers[mk]!.kindName)")
                    }
                    metadata[mk] = s
                }
                continue
            }
            infos.append(try SafeTensorsFile.parseEntry(name: key, value: value, path: path, dataStart: dataStart))
        }

        // The byte ranges, in offset order, must tile the data region exactly.
        infos.sort { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound) }
        let dataLength = fileSize - dataStart
        var expectedStart = 0
        var previous: String?
        for info in infos {
            let r = info.dataOffsets
            let location = "tensor \"\(info.name)\", byte \(dataStart + r.lowerBound)"
            if r.upperBound > dataLength {
                throw malformed(location, "data_offsets [\(r.lowerBound), \(r.upperBound)] run past the end of the data region (\(dataLength) bytes; file truncated?)")
            }
            if r.lowerBound < expectedStart {
                throw malformed(location, "data_offsets [\(r.lowerBound), \(r.upperBound)] overlap tensor \"\(previous ?? "?")\" (which ends at \(expectedStart))")
            }
            if r.lowerBound > expectedStart {
                throw malformed(location, "gap of \(r.lowerBound - expectedStart) bytes before this tensor (data offsets must be contiguous)")
            }
            expectedStart = r.upperBound
            previous = info.name
        }
        if expectedStart != dataLength {
            throw malformed("byte \(dataStart + expectedStart)", "\(dataLength - expectedStart) bytes after the last tensor's data are not covered by the header")
        }
        self.metadata = metadata
        self.names = infos.map(\.name)
        self.tensors = Dictionary(uniqueKeysWithValues: infos.map { ($0.name, $0) })
    }

    private static func parseEntry(name: String, value: JSONValue, path: String, dataStart: Int) throws -> TensorInfo {
        func malformed(_ reason: String) -> DecoderSpecError {
            .malformedFile(path: path, location: "tensor \"\(name)\" (header)", reason: reason)
        }
        guard case .object(_, let fields) = value else { throw malformed("entry must be an object, found \(value.kindName)") }
        guard case .string(let dtypeName)? = fields["dtype"] else { throw malformed("missing or non-string \"dtype\"") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw malformed("unknown dtype \"\(dtypeName)\" (known: \(SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard case .array(let shapeValues)? = fields["shape"] else { throw malformed("missing or non-array \"shape\"") }
        var shape: [Int] = []
        var count = 1
        for (i, v) in shapeValues.enumerated() {
            guard let d = v.exactInteger, d >= 0 else { throw malformed("shape[\(i)] must be a non-negative integer, found \(v.kindName)") }
            shape.append(d)
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow else { throw malformed("shape \(shape) has more elements than fit in an Int") }
            count = product
        }
        guard case .array(let offsets)? = fields["data_offsets"], offsets.count == 2,
              let begin = offsets[0].exactInteger, let end = offsets[1].exactInteger, begin >= 0, end >= begin
        else { throw malformed("\"data_offsets\" must be [begin, end] with 0 ≤ begin ≤ end") }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, bytes == end - begin else {
            throw DecoderSpecError.malformedFile(
                path: path, location: "tensor \"\(name)\", byte \(dataStart + begin)",
                reason: "shape \(shape) of \(dtype.rawValue) needs \(count) × \(dtype.byteSize) = \(overflow ? "overflowing" : String(bytes)) bytes but data_offsets [\(begin), \(end)] span \(end - begin)")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    // MARK: Access

    /// The header entry of `name`; a missing name is an error listing the closest names.
    public func info(_ name: String) throws -> TensorInfo {
        if let info = tensors[name] { return info }
        // Each distance once (the comparator used to recompute two per comparison: 2·n·log n edit
        // distances); ties keep the names' order.
        let closest = names.enumerated().map { (distance: editDistance($0.element, name), index: $0.offset, name: $0.element) }
            .sorted { ($0.distance, $0.index) < ($1.distance, $1.index) }.prefix(3).map(\.name)
        throw DecoderSpecError.malformedFile(
            path: path, location: "header",
            reason: "no tensor named \"\(name)\" (the file has \(names.count) tensors\(closest.isEmpty ? "" : "; closest: " + closest.map { "\"\($0)\"" }.joined(separator: ", ")))")
    }

    public func dtype(_ name: String) throws -> SafeTensorsDType { try info(name).dtype }
    public func shape(_ name: String) throws -> [Int] { try info(name).shape }

    /// The tensor's raw little-endian bytes.
    public func rawBytes(_ name: String) throws -> Data {
        let info = try info(name)
        return bytes.subdata(in: (dataStart + info.dataOffsets.lowerBound)..<(dataStart + info.dataOffsets.upperBound))
    }

    /// The tensor as Float, row-major. F16, BF16, F8 and F64 are converted (F64 rounds to nearest;
    /// the narrow formats are exact); integer and BOOL tensors convert to their Float values
    /// (exact up to 2^24 in magnitude).
    public func floats(_ name: String) throws -> (shape: [Int], values: [Float]) {
        let info = try info(name)
        let n = info.elementCount
        let start = dataStart + info.dataOffsets.lowerBound
        var out = [Float](repeating: 0, count: n)
        bytes.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let base = raw.baseAddress!.advanced(by: start)
            out.withUnsafeMutableBufferPointer { dst in
                switch info.dtype {
                case .f32:
                    #if _endian(little)
                    if n > 0 { memcpy(dst.baseAddress!, base, n * 4) }
                    #else
                    for i in 0..<n { dst[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
                    #endif
                case .f64: for i in 0..<n { dst[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) }
                case .f16: for i in 0..<n { dst[i] = NarrowFloat.f16(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                case .bf16: for i in 0..<n { dst[i] = NarrowFloat.bf16(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
                case .f8e5m2: for i in 0..<n { dst[i] = NarrowFloat.f8e5m2(base.load(fromByteOffset: i, as: UInt8.self)) }
                case .f8e4m3: for i in 0..<n { dst[i] = NarrowFloat.f8e4m3(base.load(fromByteOffset: i, as: UInt8.self)) }
                case .u64:  // not through Int64: values above Int64.max would turn negative (found by fuzzing)
                    for i in 0..<n { dst[i] = Float(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) }
                default:
                    let ints = SafeTensorsFile.decodeIntegers(base: base, count: n, dtype: info.dtype)
                    for i in 0..<n { dst[i] = Float(ints[i]) }
                }
            }
        }
        return (info.shape, out)
    }

    /// An integer or BOOL tensor as Int64 (U64 values above Int64.max are an error).
    /// Floating-point tensors are an error naming the dtype.
    public func integers(_ name: String) throws -> (shape: [Int], values: [Int64]) {
        let info = try info(name)
        guard !info.dtype.isFloatingPoint else {
            throw DecoderSpecError.invalidArgument(what: "tensor \"\(name)\" in \(path)", reason: "is \(info.dtype.rawValue); integers(_:) needs an integer or BOOL tensor (use floats(_:))")
        }
        if info.dtype == .u64 {
            let start = dataStart + info.dataOffsets.lowerBound
            let values: [UInt64] = bytes.withUnsafeBytes { raw in
                (0..<info.elementCount).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: start + 8 * $0, as: UInt64.self)) }
            }
            if let i = values.firstIndex(where: { $0 > UInt64(Int64.max) }) {
                throw DecoderSpecError.invalidArgument(what: "tensor \"\(name)\" in \(path)", reason: "element \(i) = \(values[i]) does not fit in Int64")
            }
            return (info.shape, values.map { Int64($0) })
        }
        let values = bytes.withUnsafeBytes { raw in
            SafeTensorsFile.decodeIntegers(base: raw.baseAddress!.advanced(by: dataStart + info.dataOffsets.lowerBound), count: info.elementCount, dtype: info.dtype)
        }
        return (info.shape, values)
    }

    private static func decodeIntegers(base: UnsafeRawPointer, count n: Int, dtype: SafeTensorsDType) -> [Int64] {
        (0..<n).map { i -> Int64 in
            switch dtype {
            case .bool: return base.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0
            case .u8: return Int64(base.load(fromByteOffset: i, as: UInt8.self))
            case .i8: return Int64(base.load(fromByteOffset: i, as: Int8.self))
            case .i16: return Int64(Int16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
            case .u16: return Int64(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            case .i32: return Int64(Int32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
            case .u32: return Int64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            case .i64: return Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
            case .u64: return Int64(truncatingIfNeeded: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
            default: preconditionFailure("decodeIntegers called with \(dtype)")
            }
        }
    }

    /// The tensor as a `Matrix`: 2-D tensors as they are, 1-D tensors of length n as `[1, n]`.
    /// Other ranks are a `.shapeMismatch` naming the tensor.
    public func matrix(_ name: String) throws -> Matrix {
        let (shape, values) = try floats(name)
        switch shape.count {
        case 2: return try Matrix(rows: shape[0], cols: shape[1], storage: values)
        case 1: return try Matrix(rows: 1, cols: shape[0], storage: values)
        default:
            throw DecoderSpecError.shapeMismatch(operation: "matrix(\"\(name)\") in \(path)", expected: "a 1-D or 2-D tensor", actual: Shape(shape).description)
        }
    }

    /// The tensor as a `Matrix`, checking its shape: a mis-shaped tensor names itself and both shapes.
    /// A 1-D tensor matches `[1, n]`.
    public func matrix(_ name: String, rows: Int, cols: Int) throws -> Matrix {
        let shape = try info(name).shape
        guard shape == [rows, cols] || (rows == 1 && shape == [cols]) else {
            throw DecoderSpecError.shapeMismatch(operation: "tensor \"\(name)\" in \(path)", expected: Shape(rows, cols).description, actual: Shape(shape).description)
        }
        return try matrix(name)
    }

    // MARK: Writing

    /// Serializes F32 tensors (in the given order) with `metadata`, the way the reference writer
    /// lays files out: compact JSON header, `__metadata__` first, padded with spaces to a multiple of
    /// 8 bytes so the data region starts 8-byte aligned, then the data, contiguous.
    ///
    /// Throws `.invalidArgument` for an empty or duplicate name, the reserved name `__metadata__`,
    /// a negative dimension, or `values.count ≠ product(shape)`.
    public static func serialize(_ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String] = [:]) throws -> Data {
        var seen = Set<String>()
        var keys: [String] = []
        var members: [String: JSONValue] = [:]
        if !metadata.isEmpty {
            let mkeys = metadata.keys.sorted()
            keys.append("__metadata__")
            members["__metadata__"] = .object(keys: mkeys, members: metadata.mapValues { .string($0) })
        }
        var offset = 0
        for t in tensors {
            guard !t.name.isEmpty, t.name != "__metadata__" else {
                throw DecoderSpecError.invalidArgument(what: "tensor name \"\(t.name)\"", reason: "must be non-empty and not \"__metadata__\"")
            }
            guard seen.insert(t.name).inserted else {
                throw DecoderSpecError.invalidArgument(what: "tensor name \"\(t.name)\"", reason: "appears twice")
            }
            guard t.shape.allSatisfy({ $0 >= 0 }) else {
                throw DecoderSpecError.invalidArgument(what: "shape \(Shape(t.shape)) of tensor \"\(t.name)\"", reason: "dimensions must be non-negative")
            }
            let count = t.shape.reduce(1, *)
            guard count == t.values.count else {
                throw DecoderSpecError.shapeMismatch(operation: "SafeTensorsFile.write tensor \"\(t.name)\"", expected: "\(count) values for shape \(Shape(t.shape))", actual: "\(t.values.count) values")
            }
            keys.append(t.name)
            members[t.name] = .object(keys: ["dtype", "shape", "data_offsets"], members: [
                "dtype": .string("F32"),
                "shape": .array(t.shape.map { .number(String($0)) }),
                "data_offsets": .array([.number(String(offset)), .number(String(offset + 4 * count))]),
            ])
            offset += 4 * count
        }
        var header = Array(JSONValue.object(keys: keys, members: members).serialized.utf8)
        header.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8))
        var out = Data(capacity: 8 + header.count + offset)
        var n = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for t in tensors {
            #if _endian(little)
            t.values.withUnsafeBytes { out.append(contentsOf: $0) }
            #else
            for v in t.values { var b = v.bitPattern.littleEndian; withUnsafeBytes(of: &b) { out.append(contentsOf: $0) } }
            #endif
        }
        return out
    }

    /// Writes F32 tensors to `url` atomically (temporary file in the same directory, then rename):
    /// an interrupted write never leaves a half-written file. See `serialize` for the layout.
    public static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String] = [:], to url: URL) throws {
        try AtomicFile.write(try serialize(tensors, metadata: metadata), to: url)
    }
}

/// Levenshtein distance over Unicode scalars (for "closest names" in messages).
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

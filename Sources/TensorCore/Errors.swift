/// The one error type the public API throws. Every case carries enough to name the offending
/// shape, id or value, so the message alone tells a user what to fix. See docs/errors.md.
public enum DecoderSpecError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Two shapes that must agree do not. `operation` names the call, e.g. "matmul(A, B)".
    case shapeMismatch(operation: String, expected: String, actual: String)
    /// A sequence (ids, tokens, rows) that must not be empty is.
    case emptySequence(what: String)
    /// A token id outside `0..<vocabularySize`.
    case idOutOfRange(id: Int, position: Int, vocabularySize: Int)
    /// A NaN or ±Inf where finite numbers are required.
    case nonFinite(what: String, index: Int, value: Double)
    /// An argument outside its documented domain (odd d_model for sinusoidal PE, heads ∤ d_model …).
    case invalidArgument(what: String, reason: String)
    /// A file that cannot be read as what it claims to be; `location` is "line 12" or "byte 40".
    case malformedFile(path: String, location: String, reason: String)
    /// A file or directory that is absent; `hint` says how to get it (e.g. the fetch command).
    case missingFile(path: String, hint: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(operation, expected, actual):
            return "shape mismatch in \(operation): expected \(expected), got \(actual)"
        case let .emptySequence(what):
            return "empty sequence: \(what) must contain at least one element"
        case let .idOutOfRange(id, position, vocabularySize):
            return "token id \(id) at position \(position) is out of range for a vocabulary of \(vocabularySize) (valid ids 0..<\(vocabularySize))"
        case let .nonFinite(what, index, value):
            return "non-finite value \(value) in \(what) at flat index \(index)"
        case let .invalidArgument(what, reason):
            return "invalid \(what): \(reason)"
        case let .malformedFile(path, location, reason):
            return "\(path): \(location): \(reason)"
        case let .missingFile(path, hint):
            return "\(path) not found. \(hint)"
        }
    }
}

extension DecoderSpecError: CustomDebugStringConvertible {
    public var debugDescription: String { description }
}

/// Validation helpers used at public API boundaries.
public enum Validate {
    /// Throws `.nonFinite` naming the first NaN/±Inf in `values`.
    @inlinable
    public static func finite<C: Collection>(_ values: C, _ what: @autoclosure () -> String) throws
    where C.Element: BinaryFloatingPoint {
        var index = 0
        for v in values {
            if !v.isFinite { throw DecoderSpecError.nonFinite(what: what(), index: index, value: Double(v)) }
            index += 1
        }
    }

    /// `finite` for Float storage — weights, logits, activations, on hot paths — with a SIMD pass
    /// first (`allFinite`); only when it fails is the first bad index searched for.
    public static func finite(_ values: ArraySlice<Float>, _ what: @autoclosure () -> String) throws {
        guard !allFinite(values) else { return }
        for (index, v) in values.enumerated() where !v.isFinite {
            throw DecoderSpecError.nonFinite(what: what(), index: index, value: Double(v))
        }
    }

    public static func finite(_ values: [Float], _ what: @autoclosure () -> String) throws {
        try finite(values[...], what())
    }

    /// True when every value is finite: Σ x·0 is exactly 0 then (±∞·0 and NaN·0 are NaN). Four
    /// independent SIMD accumulators, so the adds do not wait on each other.
    public static func allFinite(_ values: ArraySlice<Float>) -> Bool {
        values.withUnsafeBufferPointer { p -> Bool in
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            let zero = SIMD8<Float>()
            var i = 0
            if let base = p.baseAddress {
                let raw = UnsafeRawPointer(base)
                while i + 32 <= p.count {
                    a0 += raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self) * zero
                    a1 += raw.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self) * zero
                    a2 += raw.loadUnaligned(fromByteOffset: 4 * i + 64, as: SIMD8<Float>.self) * zero
                    a3 += raw.loadUnaligned(fromByteOffset: 4 * i + 96, as: SIMD8<Float>.self) * zero
                    i += 32
                }
            }
            var tail: Float = 0
            while i < p.count { tail += p[i] * 0; i += 1 }
            return ((a0 + a1) + (a2 + a3)).sum() == 0 && tail == 0
        }
    }

    public static func allFinite(_ values: [Float]) -> Bool { allFinite(values[...]) }

    /// Throws `.invalidArgument` unless `value > 0`.
    public static func positive(_ value: Int, _ what: String) throws {
        guard value > 0 else {
            throw DecoderSpecError.invalidArgument(what: what, reason: "must be positive, got \(value)")
        }
    }
}

import TensorCore

/// The result of one executable check: a property or an oracle comparison.
///
/// Checks are functions that take the implementation under test and return a `Verdict`, so the
/// same check runs against the real code (must pass) and against the Errata and bug-zoo variants
/// (must fail). See docs/tolerances.md.
public struct Verdict: Sendable, CustomStringConvertible {
    public var passed: Bool
    public var message: String
    public init(passed: Bool, message: String) { self.passed = passed; self.message = message }
    public static let pass = Verdict(passed: true, message: "ok")
    public static func fail(_ message: String) -> Verdict { Verdict(passed: false, message: message) }
    public var description: String { passed ? "pass" : "FAIL: \(message)" }

    /// Both must pass; the first failure's message is kept.
    public func and(_ other: @autoclosure () -> Verdict) -> Verdict { passed ? other() : self }
}

/// The tolerance ladder (docs/tolerances.md). Each spec names the rung it uses and why.
public enum Bound: Sendable, CustomStringConvertible {
    /// Bitwise equality: gathers, copies, elementwise ops done in the same order.
    case exact
    /// |actual − ref| ≤ n · ulp_Float(ref): a handful of correctly-rounded-ish Float operations.
    case ulps(Double)
    /// |actual − ref| ≤ tol: when the reference is near 0 and ULPs are meaningless (sin near π).
    case absolute(Double)
    /// |actual − ref| ≤ tol · |ref|.
    case relative(Double)
    /// |actual − ref| ≤ abs + rel · |ref|.
    case mixed(absolute: Double, relative: Double)

    public func allows(_ actual: Double, _ reference: Double) -> Bool {
        if actual.isNaN || reference.isNaN { return actual.isNaN && reference.isNaN }
        if actual.isInfinite || reference.isInfinite { return actual == reference }
        let err = abs(actual - reference)
        switch self {
        case .exact: return actual == reference
        case .ulps(let n): return err <= n * Double(Float(reference).ulp)
        case .absolute(let t): return err <= t
        case .relative(let t): return err <= t * abs(reference)
        case .mixed(let a, let r): return err <= a + r * abs(reference)
        }
    }

    public var description: String {
        switch self {
        case .exact: return "exact"
        case .ulps(let n): return "\(n) Float ULPs"
        case .absolute(let t): return "absolute \(t)"
        case .relative(let t): return "relative \(t)"
        case .mixed(let a, let r): return "absolute \(a) + relative \(r)"
        }
    }
}

/// Compares `actual` with `reference` elementwise under `bound`; on failure the message names the
/// worst index (by error), the expected and observed values, and `context` (shapes, seed).
public func compare<A: BinaryFloatingPoint, R: BinaryFloatingPoint>(
    _ actual: [A], _ reference: [R], _ bound: Bound, _ context: @autoclosure () -> String = ""
) -> Verdict {
    guard actual.count == reference.count else {
        return .fail("length \(actual.count) vs reference \(reference.count). \(context())")
    }
    var failures = 0
    var worst = -1
    var worstErr = -1.0
    for i in actual.indices {
        let a = Double(actual[i]), r = Double(reference[i])
        if !bound.allows(a, r) {
            failures += 1
            let err = (a.isNaN || r.isNaN) ? .infinity : abs(a - r)
            if err > worstErr { worstErr = err; worst = i }
        }
    }
    if failures == 0 { return .pass }
    return .fail("\(failures) of \(actual.count) values outside \(bound); worst at index \(worst): expected \(Double(reference[worst])), observed \(Double(actual[worst])) (|error| \(worstErr)). \(context())")
}

/// The largest error in Float ULPs of the reference, and where — for reports and notebooks.
public func maxULPError<A: BinaryFloatingPoint>(_ actual: [A], _ reference: [Double]) -> (ulps: Double, index: Int) {
    var worst = (0.0, 0)
    for i in actual.indices {
        let u = abs(Double(actual[i]) - reference[i]) / Double(Float(reference[i]).ulp)
        if u > worst.0 { worst = (u, i) }
    }
    return worst
}

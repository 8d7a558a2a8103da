import Foundation
import TensorCore

/// Tick values. The nice-number rule: for a span s = hi − lo and a target of n intervals, the step
/// is the smallest of {1, 2, 5, 10}·10^e that is ≥ s/n (e = ⌊log₁₀(s/n)⌋); the ticks are the
/// multiples k·step inside [lo, hi] (so at most n + 1 of them). Log ticks are the powers of ten
/// 10^k with ⌊log₁₀ lo⌋ ≤ k ≤ ⌈log₁₀ hi⌉. Specs: Tests/FigureSpecs.
public enum Ticks {
    /// The step of the nice-number rule; 1 for an empty span.
    public static func niceStep(span: Double, target: Int) -> Double {
        guard span > 0, span.isFinite, target > 0 else { return 1 }
        let raw = span / Double(target)
        let e = floor(log10(raw))
        let base = pow(10, e)
        for m in [1.0, 2.0, 5.0] where m * base >= raw * (1 - 1e-12) { return m * base }
        return 10 * base
    }

    /// The multiples of `niceStep` inside [lo, hi] (with a 10⁻⁹·step allowance at both ends, so
    /// an endpoint that is a multiple up to rounding is a tick).
    public static func linear(_ lo: Double, _ hi: Double, target: Int = 5) -> [Double] {
        guard lo.isFinite, hi.isFinite, hi >= lo else { return [] }
        if hi == lo { return [lo] }
        let step = niceStep(span: hi - lo, target: target)
        let first = (lo / step - 1e-9).rounded(.up), last = (hi / step + 1e-9).rounded(.down)
        guard first <= last else { return [] }
        return stride(from: first, through: last, by: 1).map { $0 * step }
    }

    /// Decimal places that show every multiple of `step` exactly: max(0, −⌊log₁₀ step⌋) (0.25 → 2
    /// is not needed: steps are 1, 2 or 5 times a power of ten).
    public static func decimals(step: Double) -> Int { max(0, Int(-floor(log10(step) + 1e-9))) }

    /// Tick labels for `values` spaced `step` apart: fixed notation with `decimals(step:)` places,
    /// "−" (U+2212) for negatives.
    public static func labels(_ values: [Double], step: Double) -> [String] {
        let d = decimals(step: step)
        return values.map { v in
            let s = String(format: "%.\(d)f", abs(v) < step * 1e-9 ? 0 : v)
            return s.hasPrefix("-") ? "\u{2212}" + s.dropFirst() : s
        }
    }

    /// Exponents k of the log ticks 10^k covering [lo, hi] (lo > 0).
    public static func logExponents(_ lo: Double, _ hi: Double) -> ClosedRange<Int> {
        Int(floor(log10(lo) + 1e-9))...max(Int(floor(log10(lo) + 1e-9)) + 1, Int(ceil(log10(hi) - 1e-9)))
    }

    /// The label of 10^k: plain decimal for −3 ≤ k ≤ 4 ("0.001" … "10000"), "1e5" style beyond.
    public static func logLabel(_ k: Int) -> String {
        if k >= 0 && k <= 4 { return String(Int(pow(10, Double(k)))) }
        if k < 0 && k >= -3 { return String(format: "%.\(-k)f", pow(10, Double(k))) }
        return "1e\(k < 0 ? "\u{2212}" : "")\(abs(k))"
    }
}

/// A map from data to pixels: linear, or logarithmic (base 10), from `domain` onto `range`
/// (range may run backwards: an SVG y axis grows downwards). Endpoints map exactly onto endpoints.
public struct Scale: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case linear, log }
    public var kind: Kind
    public var domain: ClosedRange<Double>
    public var range: (Double, Double)

    public static func == (a: Scale, b: Scale) -> Bool { a.kind == b.kind && a.domain == b.domain && a.range == b.range }

    /// - Throws: `.invalidArgument` for an empty or non-finite domain, or a log domain not > 0.
    public init(_ kind: Kind, domain: ClosedRange<Double>, range: (Double, Double)) throws {
        guard domain.lowerBound.isFinite, domain.upperBound.isFinite, domain.upperBound > domain.lowerBound else {
            throw DecoderSpecError.invalidArgument(what: "axis domain \(domain)", reason: "needs finite bounds lo < hi")
        }
        if kind == .log, domain.lowerBound <= 0 {
            throw DecoderSpecError.invalidArgument(what: "log axis domain \(domain)", reason: "needs lo > 0")
        }
        self.kind = kind
        self.domain = domain
        self.range = range
    }

    func t(_ x: Double) -> Double {
        switch kind {
        case .linear: return (x - domain.lowerBound) / (domain.upperBound - domain.lowerBound)
        case .log: return (log10(x) - log10(domain.lowerBound)) / (log10(domain.upperBound) - log10(domain.lowerBound))
        }
    }

    /// The pixel of `x`: r₀ + t·(r₁ − r₀), t = (x − lo)/(hi − lo) or (log x − log lo)/(log hi − log lo);
    /// t = 0 and t = 1 return r₀ and r₁ exactly.
    public func callAsFunction(_ x: Double) -> Double {
        let t = t(x)
        if t == 0 { return range.0 }
        if t == 1 { return range.1 }
        return range.0 + t * (range.1 - range.0)
    }

    /// Tick values and labels: nice numbers (linear) or powers of ten (log) inside the domain.
    public func ticks(target: Int = 5) -> [(value: Double, label: String)] {
        switch kind {
        case .linear:
            let values = Ticks.linear(domain.lowerBound, domain.upperBound, target: target)
            let step = Ticks.niceStep(span: domain.upperBound - domain.lowerBound, target: target)
            return Array(zip(values, Ticks.labels(values, step: step))).map { (value: $0.0, label: $0.1) }
        case .log:
            return Ticks.logExponents(domain.lowerBound, domain.upperBound).map { (value: pow(10, Double($0)), label: Ticks.logLabel($0)) }
                .filter { $0.value >= domain.lowerBound * (1 - 1e-9) && $0.value <= domain.upperBound * (1 + 1e-9) }
        }
    }

    /// A data extent widened to whole ticks: linear to the enclosing multiples of the nice step,
    /// log to the enclosing powers of ten. An empty extent is widened by one unit (or one decade).
    public static func niceDomain(_ kind: Kind, _ lo: Double, _ hi: Double, target: Int = 5) -> ClosedRange<Double> {
        switch kind {
        case .linear:
            let (a, b) = hi > lo ? (lo, hi) : (lo - 1, hi + 1)
            let step = Ticks.niceStep(span: b - a, target: target)
            return (floor(a / step + 1e-9) * step)...(ceil(b / step - 1e-9) * step)
        case .log:
            let e = Ticks.logExponents(lo, hi)
            return pow(10, Double(e.lowerBound))...pow(10, Double(e.upperBound))
        }
    }
}

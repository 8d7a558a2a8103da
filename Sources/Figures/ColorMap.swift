import Foundation

/// An sRGB colour with 8-bit channels, written `#rrggbb`.
public struct RGB: Sendable, Equatable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { (self.r, self.g, self.b) = (r, g, b) }
    public var hex: String { String(format: "#%02x%02x%02x", r, g, b) }

    /// a + t·(b − a) per channel, rounded to nearest; t clamped to [0, 1].
    public static func mix(_ a: RGB, _ b: RGB, _ t: Double) -> RGB {
        let t = min(1, max(0, t))
        func c(_ x: UInt8, _ y: UInt8) -> UInt8 { UInt8((Double(x) + t * (Double(y) - Double(x))).rounded()) }
        return RGB(c(a.r, b.r), c(a.g, b.g), c(a.b, b.b))
    }
}

/// Colour maps over t ∈ [0, 1], piecewise linear in sRGB between fixed stops:
/// `sequential` white (t = 0) → dark blue #08306b (t = 1), for non-negative values such as
/// attention weights; `diverging` blue #2166ac (t = 0) → white (t = ½) → red #b2182b (t = 1), for
/// signed values such as the PE table. Values outside the domain are clamped; NaN is grey.
public enum ColorMap: Sendable, Equatable {
    case sequential, diverging

    public static let white = RGB(255, 255, 255)
    public static let darkBlue = RGB(8, 48, 107)
    public static let blue = RGB(33, 102, 172)
    public static let red = RGB(178, 24, 43)
    public static let nan = RGB(128, 128, 128)
    /// Cells a mask hides (drawn, but not coloured by value).
    public static let hidden = RGB(217, 217, 217)

    public func color(_ t: Double) -> RGB {
        guard t.isFinite else { return Self.nan }
        let t = min(1, max(0, t))
        switch self {
        case .sequential: return RGB.mix(Self.white, Self.darkBlue, t)
        case .diverging: return t <= 0.5 ? RGB.mix(Self.blue, Self.white, 2 * t) : RGB.mix(Self.white, Self.red, 2 * t - 1)
        }
    }

    /// The colour of `value` on `domain`: color((value − lo)/(hi − lo)).
    public func color(_ value: Double, domain: ClosedRange<Double>) -> RGB {
        let span = domain.upperBound - domain.lowerBound
        return color(span > 0 ? (value - domain.lowerBound) / span : 0)
    }
}

/// Series colours: the Okabe–Ito palette (distinguishable with the common colour-vision deficiencies).
public enum Palette {
    public static let colors = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442"]
    public static func color(_ i: Int) -> String { colors[i % colors.count] }
}

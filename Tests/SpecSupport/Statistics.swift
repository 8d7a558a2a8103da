// Statistical checks shared by the suites (docs/tolerances.md, "Statistical checks").
import GSLOracle

/// Pearson's χ² statistic of observed counts against expected probabilities, and its p-value
/// Q(χ²; k − 1) from GSL. Only bins with p > 0 count; a draw in a bin with p = 0 fails outright.
public func chiSquare(counts: [Int], expected p: [Double]) -> (statistic: Double, pValue: Double, impossibleDraws: Int) {
    let n = Double(counts.reduce(0, +))
    var statistic = 0.0
    var bins = 0
    var impossible = 0
    for (c, pi) in zip(counts, p) {
        if pi == 0 { impossible += c; continue }
        let e = n * pi
        statistic += (Double(c) - e) * (Double(c) - e) / e
        bins += 1
    }
    return (statistic, GSL.chiSquareQ(statistic, degreesOfFreedom: Double(bins - 1)), impossible)
}

import DecoderSpec
import Foundation
import GSLOracle

/// Suite `pe`: the sinusoidal table, naive vs optimized vs GSL (gsl_sf_sin/gsl_sf_cos per element,
/// through GSLOracle). Validate first — the max |error| of each variant against a float64 table
/// computed with GSL — then time (median of runs). See docs/positional-encoding.md.
func peSuite() throws -> [Table] {
    var table = Table(
        title: "pe: sinusoidal table [positions, d] (Float out), one thread",
        header: ["shape", "variant", "median ms", "vs naive", "ns/element", "max |error| vs float64"])
    for (n, d) in [(2048, 512), (8192, 1024)] {
        let shape = "\(n)×\(d)"
        let count = n * d
        // The float64 reference, by GSL.
        let log10000 = try GSL.log(10000)
        let omega = try (0..<(d / 2)).map { i in try GSL.exp(-Double(2 * i) / Double(d) * log10000) }
        var reference = [Double](repeating: 0, count: count)
        for p in 0..<n {
            for i in 0..<(d / 2) {
                reference[p * d + 2 * i] = try GSL.sin(Double(p) * omega[i])
                reference[p * d + 2 * i + 1] = try GSL.cos(Double(p) * omega[i])
            }
        }
        func maxError(_ out: [Float]) -> Double {
            var worst = 0.0
            for k in 0..<count { worst = max(worst, abs(Double(out[k]) - reference[k])) }
            return worst
        }

        var out = [Float](repeating: 0, count: count)
        var rows: [(String, Double, Double)] = []
        for variant in [KernelPath.naive, .optimized] {  // .parallel is .optimized for this kernel
            let body = {
                out.withUnsafeMutableBufferPointer { buf in
                    PositionalTable.sinusoidal(variant, first: 0, count: n, dimension: d, into: buf.baseAddress!)
                }
            }
            body()
            let err = maxError(out)
            guard err <= 1e-6 else { throw PEBenchError.validation("pe \(variant) \(shape): max error \(err) > 1e-6") }
            rows.append((variant.rawValue, Harness.median(warmup: 1, runs: variant == .naive ? 5 : 11, body), err))
        }
        // GSL: the same table with gsl_sf_sin / gsl_sf_cos per element, rounded to Float.
        let gslBody = {
            out.withUnsafeMutableBufferPointer { buf in
                for p in 0..<n {
                    for i in 0..<(d / 2) {
                        let angle = Double(p) * omega[i]
                        buf[p * d + 2 * i] = Float((try? GSL.sin(angle)) ?? .nan)
                        buf[p * d + 2 * i + 1] = Float((try? GSL.cos(angle)) ?? .nan)
                    }
                }
            }
        }
        gslBody()
        rows.append(("GSL gsl_sf_sin/cos", Harness.median(warmup: 1, runs: 5, gslBody), maxError(out)))
        // Float32 angles (what a float32 framework computes): timed for context, error shown.
        let float32Body = {
            out.withUnsafeMutableBufferPointer { buf in
                for i in 0..<(d / 2) {
                    let w = Float(omega[i])
                    for p in 0..<n {
                        let a = Float(p) * w
                        buf[p * d + 2 * i] = sinf(a)
                        buf[p * d + 2 * i + 1] = cosf(a)
                    }
                }
            }
        }
        float32Body()
        rows.append(("float32 angles (torch-style, reference only)", Harness.median(warmup: 1, runs: 5, float32Body), maxError(out)))

        let naive = rows[0].1
        for (name, seconds, err) in rows {
            table.rows.append([shape, name, ms(seconds), ratio(naive / seconds),
                               String(format: "%.2f", seconds * 1e9 / Double(count)), String(format: "%.2e", err)])
            recorded.append(Measurement(suite: "pe", kernel: "sinusoidal table", variant: name, shape: shape,
                                        medianSeconds: seconds, gflops: nil, note: String(format: "max abs error %.2e", err)))
        }
    }
    return [table]
}

enum PEBenchError: Error, CustomStringConvertible {
    case validation(String)
    var description: String { switch self { case .validation(let s): return "validation failed: \(s)" } }
}

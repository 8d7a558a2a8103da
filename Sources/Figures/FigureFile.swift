import Foundation
import IO
import TensorCore

/// Writing figures: `save` puts `name`.svg in the directory named by the environment variable
/// `DECODERSPEC_FIGURES` when it is set (the notebook runner sets it to a scratch directory and
/// compares what the cells wrote with the committed copies), else in `docs/figures/` under the
/// current directory. Returns the path written.
public enum FigureFile {
    public static let environmentKey = "DECODERSPEC_FIGURES"
    public static let committedDirectory = "docs/figures"

    public static var directory: URL {
        URL(fileURLWithPath: ProcessInfo.processInfo.environment[environmentKey] ?? committedDirectory, isDirectory: true)
    }

    @discardableResult
    public static func save(_ figure: some Figure, as name: String) throws -> URL {
        try save(svg: figure.svg(), as: name)
    }

    @discardableResult
    public static func save(svg: String, as name: String) throws -> URL {
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
            throw DecoderSpecError.invalidArgument(what: "figure name \"\(name)\"", reason: "use letters, digits, - and _ only")
        }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent(name + ".svg")
        try AtomicFile.write(Data(svg.utf8), to: url)
        return url
    }
}

import ArgumentParser
import DecoderSpec
import Foundation

/// The CLI's version (`decoder-spec --version`), raised with each tagged release.
let cliVersion = "0.1.0"

@main
struct DecoderSpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decoder-spec",
        abstract: "The Transformer decoder, every formula executable, checkable and measurable.",
        version: "decoder-spec \(cliVersion)",
        subcommands: [
            DemoCommand.self,
            NotebooksCommand.self,
            BookCommand.self,
            PECommand.self,
            EmbedCommand.self,
            GenerateCommand.self,
            ForwardCommand.self,
            BLEUCommand.self,
            ConllevalCommand.self,
            AttentionCommand.self,
            FinetuneCommand.self,
            TrainCommand.self,
            PretrainCommand.self,
            TranslateCommand.self,
        ]
    )

    /// Parses and runs a subcommand. Every failure ends the same way (docs/errors.md): exactly one
    /// line on stderr, `decoder-spec <command>: error: <message>`, and a non-zero exit status —
    /// 64 for a bad command line (unknown flag, missing or malformed value), 1 for anything the
    /// command met while running (a `DecoderSpecError` naming the shape, id, value or file).
    /// `--help` prints the usage on stdout and exits 0. SIGXFSZ is ignored, so a write beyond a
    /// file-size limit fails with EFBIG and is reported like a full disk instead of killing the
    /// process (docs/reliability.md).
    static func main() {
        signal(SIGXFSZ, SIG_IGN)
        var commandName = "decoder-spec"
        do {
            var command = try parseAsRoot()
            commandName = CLIErrors.name(of: command)
            try command.run()
        } catch {
            CLIErrors.exit(with: error, commandName: commandName)
        }
    }
}

/// The CLI's one error path: formats any error as one stderr line and exits.
enum CLIErrors {
    /// "decoder-spec finetune ner" for a parsed `FinetuneNERCommand`.
    static func name(of command: ParsableCommand) -> String {
        let name = type(of: command).configuration.commandName ?? "\(type(of: command))"
        switch type(of: command) {
        case is FinetuneNERCommand.Type, is FinetuneClassifyCommand.Type: return "decoder-spec finetune \(name)"
        case is TrainTranslateCommand.Type, is TrainLanguageModelCommand.Type: return "decoder-spec train \(name)"
        case is PretrainMLMCommand.Type: return "decoder-spec pretrain \(name)"
        default: return "decoder-spec \(name)"
        }
    }

    static func exit(with error: Error, commandName: String) -> Never {
        if let code = error as? ExitCode {
            // The command has already reported (e.g. `notebooks` prints each failing cell).
            Foundation.exit(code.rawValue)
        }
        let code = DecoderSpecCommand.exitCode(for: error)
        if code == .success {  // --help, --version
            print(DecoderSpecCommand.fullMessage(for: error))
            Foundation.exit(0)
        }
        var name = commandName, message: String, hint = ""
        switch error {
        case let error as DecoderSpecError:
            message = error.description
        case let error as LocalizedError where error.errorDescription != nil:
            message = error.errorDescription!
        default:
            message = DecoderSpecCommand.message(for: error)
            if message.isEmpty { message = "\(error)" }
            let full = DecoderSpecCommand.fullMessage(for: error)
            if code != .validationFailure {
                // A run-time failure of a helper (e.g. the notebook runner): no usage hint.
            } else if commandName != "decoder-spec" {
                hint = " (see '\(commandName) --help')"
            } else if let see = full.split(separator: "\n").last(where: { $0.contains("See '") && $0.contains("--help'") }),
               // Parse errors happen before a command exists: take its name from the usage text.
               let open = see.range(of: "See '"), let close = see.range(of: " --help'") {
                name = String(see[open.upperBound..<close.lowerBound])
                hint = " (see '\(name) --help')"
            }
        }
        if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }
        let oneLine = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
        FileHandle.standardError.write(Data("\(name): error: \(oneLine)\(hint)\n".utf8))
        Foundation.exit(code.rawValue == 0 ? 1 : code.rawValue)
    }
}

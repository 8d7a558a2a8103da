import ArgumentParser
import DecoderSpec

@main
struct DecoderSpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decoder-spec",
        abstract: "The Transformer decoder, every formula executable, checkable and measurable.",
        subcommands: [
            DemoCommand.self,
            NotebooksCommand.self,
            PECommand.self,
            EmbedCommand.self,
            GenerateCommand.self,
            ForwardCommand.self,
            BLEUCommand.self,
            ConllevalCommand.self,
            AttentionCommand.self,
            FinetuneCommand.self,
            TrainCommand.self,
            TranslateCommand.self,
        ]
    )
}

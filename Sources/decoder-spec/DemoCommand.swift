import ArgumentParser
import DecoderSpec

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Walk the whole data flow on a tiny deterministic model, with printed tables.")

    func run() throws {
        print("DecoderSpec demo")
        try DecoderDemo.run()
    }
}

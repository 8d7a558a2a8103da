import DecoderSpec
import Foundation
import Testing

/// Files that belong together are written all or none (`AtomicFile.group`), and a lock file admits
/// one holder (`FileLock`). docs/reliability.md, "Faults".
@Suite("IO: atomic groups of files and the checkpoint lock")
struct AtomicFileSpecs {
    func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test("A group whose third write fails replaces none of the files it wrote before, and leaves no temporary")
    func groupAllOrNone() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["a.txt", "b.txt"] { try AtomicFile.write("old \(name)", to: dir.appendingPathComponent(name)) }
        #expect(throws: DecoderSpecError.self) {
            try AtomicFile.group {
                try AtomicFile.write("new a", to: dir.appendingPathComponent("a.txt"))
                try AtomicFile.write("new b", to: dir.appendingPathComponent("b.txt"))
                try AtomicFile.write("c", to: dir.appendingPathComponent("missing/c.txt"))  // its directory does not exist
            }
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(names == ["a.txt", "b.txt"], "\(names)")
        for name in ["a.txt", "b.txt"] {
            #expect(try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8) == "old \(name)")
        }
        // The same group without the failing write replaces both, and a nested group joins the outer one.
        try AtomicFile.group {
            try AtomicFile.write("new a", to: dir.appendingPathComponent("a.txt"))
            try AtomicFile.group { try AtomicFile.write("new b", to: dir.appendingPathComponent("b.txt")) }
            #expect(try String(contentsOf: dir.appendingPathComponent("b.txt"), encoding: .utf8) == "old b.txt", "renamed before the group ended")
        }
        #expect(try String(contentsOf: dir.appendingPathComponent("b.txt"), encoding: .utf8) == "new b")
    }

    @Test("A failed group removes the directory it created (and its empty subdirectories), never one that existed")
    func groupRemovesItsDirectory() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fresh = dir.appendingPathComponent("model")
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try AtomicFile.group(directory: fresh) {
                try FileManager.default.createDirectory(at: fresh.appendingPathComponent("source"), withIntermediateDirectories: true)
                try AtomicFile.write("x", to: fresh.appendingPathComponent("source/vocab.json"))
                throw Stop()
            }
        }
        #expect(!FileManager.default.fileExists(atPath: fresh.path))
        #expect(throws: Stop.self) { try AtomicFile.group(directory: dir) { throw Stop() } }
        #expect(FileManager.default.fileExists(atPath: dir.path))
    }

    @Test("A lock file admits one holder: a second lock (another open, even in this process) is refused naming the holder's pid; after unlock it is free")
    func lock() throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("run.ckpt")
        let first = try TrainingCheckpoint.lock(url)
        #expect(TrainingCheckpoint.lockURL(for: url).path == url.path + ".lock")
        do {
            _ = try TrainingCheckpoint.lock(url)
            Issue.record("a second lock was granted")
        } catch let error as DecoderSpecError {
            #expect("\(error)".contains(url.path) && "\(error)".contains("pid \(getpid())"), "\(error)")
        }
        first.unlock()
        let again = try TrainingCheckpoint.lock(url)
        again.unlock()
    }
}

import Foundation
import TensorCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes files so that an interrupted run never leaves a half-written one (docs/reliability.md):
/// the bytes go to a temporary file in the destination's directory (same file system), are
/// flushed to disk, and the temporary file is then renamed over the destination — `rename(2)`
/// is atomic, so readers see either the old file or the complete new one. A write that fails
/// (the disk full, a file-size limit: `ENOSPC`, `EFBIG`) removes its temporary file and leaves the
/// destination as it was. Files that belong together (a model directory) are written as one
/// `group`: every file is staged first, and only when all are on disk are they renamed into place.
/// See docs/io.md.
public enum AtomicFile {
    /// Writes `data` to `url` atomically (inside `group`, staged until the group ends). Throws
    /// `.missingFile` when the directory does not exist and `.invalidArgument` naming the path and
    /// the system's reason for any other failure (e.g. "File too large", "No space left on device").
    public static func write(_ data: Data, to url: URL) throws {
        if let group = Group.current {
            try group.add(stage(data, to: url))
            return
        }
        let staged = try stage(data, to: url)
        do {
            try commit(staged)
        } catch {
            unlink(staged.temporary)
            throw error
        }
        removeStaleTemporaries(of: url)
    }

    /// Writes `text` as UTF-8, atomically.
    public static func write(_ text: String, to url: URL) throws {
        try write(Data(text.utf8), to: url)
    }

    /// Runs `body`, in which every `AtomicFile.write` (on this thread) is staged — written to its
    /// temporary file and flushed — but not yet renamed; when `body` returns, all staged files are
    /// renamed into place, in the order written. When `body` or any write throws, every staged
    /// temporary file is removed and no destination has changed; `directory`, when it did not
    /// exist before, is removed again with the (then empty) subdirectories `body` created in it.
    /// A group inside a group joins the outer one. A crash between two renames can still leave a
    /// mix; a failed write (the disk full) cannot, because the renames need no new space.
    public static func group<R>(directory: URL? = nil, _ body: () throws -> R) throws -> R {
        if Group.current != nil { return try body() }
        let existed = directory.map { FileManager.default.fileExists(atPath: $0.path) } ?? true
        let group = Group()
        do {
            let result = try Group.$current.withValue(group) { try body() }
            try group.commit()
            return result
        } catch {
            group.discard()
            if !existed, let directory { removeEmptyDirectories(directory) }
            throw error
        }
    }

    /// A staged file: its temporary path and destination.
    struct Staged {
        let temporary: String
        let destination: URL
    }

    /// The files staged by `group`, in order.
    final class Group: @unchecked Sendable {
        @TaskLocal static var current: Group?
        private let lock = NSLock()
        private var staged: [Staged] = []

        func add(_ s: Staged) {
            lock.lock(); defer { lock.unlock() }
            staged.append(s)
        }

        /// Renames every staged file into place; after a failed rename, removes the rest.
        func commit() throws {
            lock.lock(); defer { lock.unlock() }
            var index = 0
            defer { for s in staged[index...] { unlink(s.temporary) }; staged = [] }
            while index < staged.count {
                try AtomicFile.commit(staged[index])
                index += 1
            }
            for s in staged { removeStaleTemporaries(of: s.destination) }
        }

        func discard() {
            lock.lock(); defer { lock.unlock() }
            for s in staged { unlink(s.temporary) }
            staged = []
        }
    }

    /// Writes `data` to a new temporary file beside `url` and flushes it; on any failure the
    /// temporary file is removed before the error is thrown.
    static func stage(_ data: Data, to url: URL) throws -> Staged {
        let path = url.path
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DecoderSpecError.missingFile(path: directory, hint: "The output directory must exist before writing \(url.lastPathComponent).")
        }
        let tempPath = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure(path, "cannot create a temporary file \(tempPath)", errno) }
        // errno of the first failing call, taken at once (close and unlink may change errno).
        var failed: Int32 = 0
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var written = 0
            while written < raw.count {
                let n = systemWrite(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    failed = errno
                    return
                }
                written += n
            }
        }
        if failed == 0 && fsync(fd) != 0 { failed = errno }
        close(fd)
        guard failed == 0 else {
            unlink(tempPath)
            throw failure(path, "cannot write it", failed)
        }
        return Staged(temporary: tempPath, destination: url)
    }

    static func commit(_ s: Staged) throws {
        guard rename(s.temporary, s.destination.path) == 0 else {
            throw failure(s.destination.path, "cannot rename the temporary file into place", errno)
        }
    }

    /// A process killed between creating its temporary file and the rename (kill -9, power loss)
    /// leaves `.<name>.tmp-<pid>-<random>` behind; the next successful write of the same file
    /// removes those whose process no longer exists. The destination itself is never touched.
    static func removeStaleTemporaries(of url: URL) {
        let directory = url.deletingLastPathComponent().path
        let prefix = "." + url.lastPathComponent + ".tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0 != "-" }), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink(directory + "/" + name) }
        }
    }

    /// Removes `directory` and the directories below it, deepest first, when they are empty
    /// (`rmdir` refuses a directory holding anything).
    static func removeEmptyDirectories(_ directory: URL) {
        let children = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in children {
            var isDirectory: ObjCBool = false
            let child = directory.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: child.path, isDirectory: &isDirectory), isDirectory.boolValue {
                removeEmptyDirectories(child)
            }
        }
        rmdir(directory.path)
    }

    /// `.invalidArgument` naming the file, what failed and the system's reason; for a full disk or
    /// a file-size limit, what that means for the destination.
    static func failure(_ path: String, _ what: String, _ code: Int32) -> DecoderSpecError {
        var reason = "\(what): \(String(cString: strerror(code)))"
        if code == ENOSPC || code == EFBIG || code == EDQUOT {
            reason += " (the disk is full or a file-size limit was reached); the file was not replaced"
        }
        return .invalidArgument(what: "output file \(path)", reason: reason)
    }
}

@inline(__always)
private func systemWrite(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Darwin)
    return Darwin.write(fd, buf, count)
    #elseif canImport(Musl)
    return Musl.write(fd, buf, count)
    #else
    return Glibc.write(fd, buf, count)
    #endif
}

import Foundation
import TensorCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An advisory lock on a file, held by one process at a time: `flock(2)` (exclusive, non-blocking)
/// on a sibling lock file, which records the holder's process id. The kernel releases the lock when
/// the holder exits in any way — a `kill -9` included — so a lock left by a dead process never
/// blocks the next one; the lock file itself stays (its content is only a hint). The training loop
/// takes one on its checkpoint for the whole run, so two runs cannot write one checkpoint
/// (docs/reliability.md).
public final class FileLock: @unchecked Sendable {
    /// The lock file.
    public let url: URL
    private var descriptor: Int32

    /// Takes the lock on `url` (e.g. `run.ckpt.lock`), creating the file when absent; `what` names
    /// what it protects (e.g. "checkpoint run.ckpt") and `hint` says what to do when it is taken.
    /// - Throws: `.invalidArgument` naming `what`, the lock file and the holder's process id when
    ///   another process (or another open of the file in this one) holds it; `.missingFile` when
    ///   its directory does not exist; `.invalidArgument` with the system's reason otherwise.
    public init(_ url: URL, for what: String, hint: String = "wait for it to finish, or use another path") throws {
        self.url = url
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DecoderSpecError.missingFile(path: directory, hint: "The directory of \(what) must exist.")
        }
        let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DecoderSpecError.invalidArgument(what: "lock file \(url.path)", reason: "cannot open it: \(String(cString: strerror(errno)))")
        }
        var status: Int32
        repeat { status = flock(fd, LOCK_EX | LOCK_NB) } while status != 0 && errno == EINTR
        guard status == 0 else {
            let code = errno
            let holder = Self.recordedHolder(fd)
            close(fd)
            guard code == EWOULDBLOCK else {
                throw DecoderSpecError.invalidArgument(what: "lock file \(url.path)", reason: "cannot lock it: \(String(cString: strerror(code)))")
            }
            throw DecoderSpecError.invalidArgument(
                what: what,
                reason: "locked by another process (pid \(holder.map(String.init) ?? "unknown")) through \(url.path); \(hint)")
        }
        descriptor = fd
        // Record the holder for whoever is refused next: "<pid>\n".
        let record = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = record.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    /// The process id written in the lock file by its holder, nil when unreadable.
    static func recordedHolder(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Int32(String(decoding: buffer[..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Releases the lock (also done when the object is freed, and by the kernel when the process exits).
    public func unlock() {
        guard descriptor >= 0 else { return }
        flock(descriptor, LOCK_UN)
        close(descriptor)
        descriptor = -1
    }

    deinit { unlock() }
}

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
/// is atomic, so readers see either the old file or the complete new one. See docs/io.md.
public enum AtomicFile {
    /// Writes `data` to `url` atomically. Throws `.missingFile` when the directory does not exist
    /// and `.invalidArgument` naming the path and the system's reason for any other failure.
    public static func write(_ data: Data, to url: URL) throws {
        let path = url.path
        let directory = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DecoderSpecError.missingFile(path: directory, hint: "The output directory must exist before writing \(url.lastPathComponent).")
        }
        let tempPath = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw failure(path, "cannot create a temporary file \(tempPath)") }
        var ok = true
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var written = 0
            while written < raw.count {
                let n = Glibc_write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    ok = false
                    return
                }
                written += n
            }
        }
        let reason = String(cString: strerror(errno))
        if !ok || fsync(fd) != 0 {
            close(fd)
            unlink(tempPath)
            throw DecoderSpecError.invalidArgument(what: "output file \(path)", reason: "cannot write: \(reason)")
        }
        close(fd)
        guard rename(tempPath, path) == 0 else {
            let e = failure(path, "cannot rename the temporary file into place")
            unlink(tempPath)
            throw e
        }
        removeStaleTemporaries(of: url)
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

    /// Writes `text` as UTF-8, atomically.
    public static func write(_ text: String, to url: URL) throws {
        try write(Data(text.utf8), to: url)
    }

    static func failure(_ path: String, _ what: String) -> DecoderSpecError {
        .invalidArgument(what: "output file \(path)", reason: "\(what): \(String(cString: strerror(errno)))")
    }
}

@inline(__always)
private func Glibc_write(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Darwin)
    return Darwin.write(fd, buf, count)
    #elseif canImport(Musl)
    return Musl.write(fd, buf, count)
    #else
    return Glibc.write(fd, buf, count)
    #endif
}

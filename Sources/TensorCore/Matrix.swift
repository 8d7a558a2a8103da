/// A shape, printed the way the docs write it: `[T, d]`.
public struct Shape: Hashable, Sendable, CustomStringConvertible {
    public var dims: [Int]
    public init(_ dims: Int...) { self.dims = dims }
    public init(_ dims: [Int]) { self.dims = dims }
    public var count: Int { dims.reduce(1, *) }
    public var description: String { "[" + dims.map(String.init).joined(separator: ", ") + "]" }
}

/// A dense row-major matrix of `Float`: element (r, c) lives at `storage[r * cols + c]`.
///
/// The library's arrays of shape `[T, d]` (a sequence of T vectors of width d) are `Matrix`
/// values. Kernels take raw buffers; `Matrix` is the safe, validated face of the public API.
public struct Matrix: Equatable, Sendable, CustomStringConvertible {
    public private(set) var rows: Int
    public let cols: Int

    /// The `rows · cols` elements, row-major. Readable, settable and mutable in place
    /// (`m.storage[i] = x`), but its count is part of the shape: every kernel reads `rows · cols`
    /// elements through an unsafe pointer, trusting it. An assignment or mutation that changes the
    /// count (`m.storage.removeLast()`, `m.storage = []`) therefore stops the program with a
    /// precondition failure — checked in release builds too — instead of letting a later kernel read
    /// or write memory the array does not own (docs/reliability.md, "Unsafe code and its guards").
    @inlinable
    public var storage: [Float] {
        get { elements }
        set {
            precondition(newValue.count == rows &* cols, "Matrix storage of \(newValue.count) elements for [\(rows), \(cols)]")
            elements = newValue
        }
        _modify {
            yield &elements
            precondition(elements.count == rows &* cols, "Matrix storage changed to \(elements.count) elements for [\(rows), \(cols)]")
        }
    }

    /// The elements; only `Matrix`'s own methods change their count, together with `rows`.
    @usableFromInline var elements: [Float]

    /// A `rows × cols` matrix filled with `value`. Sizes must be ≥ 0 (0 is allowed for empty
    /// intermediates; public APIs that need non-empty input check it themselves).
    public init(rows: Int, cols: Int, repeating value: Float = 0) {
        precondition(rows >= 0 && cols >= 0, "Matrix size must be non-negative")
        self.rows = rows
        self.cols = cols
        self.elements = [Float](repeating: value, count: rows * cols)
    }

    /// Wraps `storage` (row-major). Throws when `storage.count != rows * cols`.
    public init(rows: Int, cols: Int, storage: [Float]) throws {
        guard rows >= 0, cols >= 0 else {
            throw DecoderSpecError.invalidArgument(what: "matrix shape [\(rows), \(cols)]", reason: "sizes must be non-negative")
        }
        let (count, overflow) = rows.multipliedReportingOverflow(by: cols)
        guard !overflow else {
            throw DecoderSpecError.invalidArgument(what: "matrix shape [\(rows), \(cols)]", reason: "rows × cols overflows Int")
        }
        guard storage.count == count else {
            throw DecoderSpecError.shapeMismatch(
                operation: "Matrix(rows:cols:storage:)", expected: "\(count) elements for [\(rows), \(cols)]",
                actual: "\(storage.count) elements")
        }
        self.rows = rows
        self.cols = cols
        self.elements = storage
    }

    /// Builds from nested rows; throws on ragged input.
    public init(_ nested: [[Float]]) throws {
        let cols = nested.first?.count ?? 0
        for (r, row) in nested.enumerated() where row.count != cols {
            throw DecoderSpecError.shapeMismatch(operation: "Matrix(nested rows)", expected: "row \(r) of length \(cols)", actual: "length \(row.count)")
        }
        try self.init(rows: nested.count, cols: cols, storage: nested.flatMap { $0 })
    }

    public var shape: Shape { Shape(rows, cols) }

    @inlinable
    public subscript(r: Int, c: Int) -> Float {
        get { elements[r * cols + c] }
        set { elements[r * cols + c] = newValue }
    }

    /// Row `r` as an array (a copy).
    public func row(_ r: Int) -> [Float] { Array(storage[(r * cols)..<((r + 1) * cols)]) }

    /// Appends `other`'s rows in place: amortized O(size of `other`), like `Array.append` (a KV
    /// cache grows by one row per decoding step without copying what it holds).
    /// - Throws: `.shapeMismatch` when the widths differ.
    public mutating func appendRows(_ other: Matrix) throws {
        guard other.cols == cols else {
            throw DecoderSpecError.shapeMismatch(operation: "appendRows", expected: "rows of width \(cols)", actual: "\(other.shape)")
        }
        elements.append(contentsOf: other.elements)
        rows += other.rows
    }

    /// Keeps the first `count` rows (0 ≤ count ≤ rows), dropping the rest in place — the undo of
    /// `appendRows` (a KV cache rolled back after a failed step).
    public mutating func truncateRows(to count: Int) {
        precondition(count >= 0 && count <= rows, "truncateRows(to: \(count)) of a matrix with \(rows) rows")
        elements.removeLast((rows - count) * cols)
        rows = count
    }

    /// The transpose, `[cols, rows]`.
    public func transposed() -> Matrix {
        var t = Matrix(rows: cols, cols: rows)
        for r in 0..<rows { for c in 0..<cols { t.storage[c * rows + r] = storage[r * cols + c] } }
        return t
    }

    public var description: String { "Matrix\(shape)" }
}

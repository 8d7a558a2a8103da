// The source documents' formulas, verbatim, so their defects can be shown executably. The documents: docs/sources.md.

// The source documents' formulas, verbatim, so their defects can be shown executably. DESIGN §7.

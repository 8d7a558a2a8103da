// Concept 2 — positional encoding. See docs/positional-encoding.md. (issue 2)

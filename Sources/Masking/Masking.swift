// Concept 4 — masking. See docs/masking.md. (issue 4)

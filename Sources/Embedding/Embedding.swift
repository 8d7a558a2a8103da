// Concept 1 — token embedding E[X]. See docs/embedding.md. (issue 2)

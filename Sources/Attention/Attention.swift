// Concept 3 — scaled dot-product and multi-head attention. See docs/attention.md. (issue 4)

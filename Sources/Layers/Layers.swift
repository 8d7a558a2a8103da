// Concept 5 — LayerNorm, residual, FFN, encoder and decoder layers, model configurations. (issue 5)

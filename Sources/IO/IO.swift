// File formats: safetensors, CoNLL, vocab/config readers, tokenizers. (issues 5, 6)

"""Mean-field signal propagation: predict per-layer scale and the first loss from the architecture."""

"""Beyond one sentence: datasets run through a model, per-example metrics, and the WinoMT gender-bias probe."""

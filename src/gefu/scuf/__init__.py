"""SCUF: the one-step SD-Turbo low-light enhancer (generator, image prompt, cycle-attention adapter, training)."""

"""Models behind ``indicator=model``: the training set from recorded ticks, fitting with walk-forward validation,
and the model file (skops, types checked on load)."""

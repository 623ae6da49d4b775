"""Errors of the model file (apart from the store, so that naming one does not import scikit-learn)."""

from streams.errors import StreamsError


class ModelFileError(StreamsError):
    """A model file cannot be used: missing, not ours, holding types we do not trust, or for other features."""

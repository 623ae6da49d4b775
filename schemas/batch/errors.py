"""Errors of the batch codec."""

from schemas.errors import TradecoreError


class BatchSchemaError(TradecoreError):
    """A schema the batch codec cannot read or write, or a writer schema it cannot resolve to the reader's."""


class BatchEncodeError(TradecoreError):
    """A column that does not fit its field: a null in a required field, a value out of range, a missing column."""

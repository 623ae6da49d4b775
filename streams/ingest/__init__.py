"""Market-data ingest: ticks from an exchange (``exchange``) onto ``ticks``, through the command gateway."""

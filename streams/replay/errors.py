from streams.errors import StreamsError


class ReplayError(StreamsError):
    """A replay or point-in-time read that cannot be done as asked: a bad range, topic or filter, or Kafka failing."""

"""Research on recorded data: the processors replayed in process (no Kafka), parameter sweeps, walk-forward."""

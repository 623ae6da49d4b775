"""The pure trading logic: order lifecycle, risk, the simulated venue, positions, signals and instruments.

It imports ``schemas`` only: no Kafka, no database, no clock. Live processing, replay and backtests all run it.
"""

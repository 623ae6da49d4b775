"""Execution: the simulated venue that matches our accepted orders against recorded or live quotes and trades."""

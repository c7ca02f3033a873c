"""Measuring real modules to calibrate the memory model: used by tests and benchmarks only."""

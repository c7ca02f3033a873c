"""The base layer: atomic writes, paths, logging, and the run folder. No Qt, no torch."""

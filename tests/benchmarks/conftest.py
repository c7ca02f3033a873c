# Benchmarks are scripts that print JSON; pytest does not collect them.
collect_ignore_glob = ["*.py"]

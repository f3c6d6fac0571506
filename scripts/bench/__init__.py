"""The benchmark's measurements, one module each; `scripts/benchmark.py` parses the
options, sets the thread environment before numpy loads, and runs them."""

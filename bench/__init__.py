"""Benchmarks: speed and detection quality, reported as ratios against baselines run in the same sitting."""

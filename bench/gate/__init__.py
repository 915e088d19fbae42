"""`bench gate`: the CI regression gate on ms/iter, with the runner's speed cancelled by a reference.

cli (flags, verdicts, exit codes), stats (ratio of medians, bootstrap interval, Mann-Whitney U,
verdict: pure, and reusable as `compare_samples`), measure (the interleaved A B / B A trials),
reference (the frozen plain-PyTorch step), baseline (the baseline file, checked before measuring),
pytest_input (pytest-benchmark JSON), files (GateError, reading and writing JSON safely).
docs/gate.md is the user's reference.
"""

"""`bench gate`: the CI regression gate on ms/iter, with the runner's speed cancelled by a reference.

cli (flags, verdicts, exit codes), stats (ratio of medians, bootstrap interval, Mann-Whitney U,
verdict; pure and reusable), measure (the interleaved A B / B A trials), reference (the frozen
plain-PyTorch step), pytest_input (pytest-benchmark JSON). docs/gate.md is the user's reference.
"""

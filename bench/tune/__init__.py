"""`bench tune`: what each common tip is really worth on this device, and the fastest configuration.

plan (the variants each device offers around the user's recipe, and why others are not available),
verdict (pure: an effect, its interval and its verdict from the measured samples; the best combination;
shared with reports/), measure (throughput variants interleaved with the default in blocks of steps),
to_loss (runs to a target val loss, as MLPerf times training), cli (flags, the results directory, resume).
docs/tune.md is the user's reference. Importing this package does not import torch.
"""

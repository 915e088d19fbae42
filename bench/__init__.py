"""devicebench's sweeps, runner, results writer, gate and CLI."""

__version__ = "0.1.0"

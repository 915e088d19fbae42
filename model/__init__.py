"""The shared GPT, its FLOP count, and the data pipeline. Imports neither bench/ nor reports/."""

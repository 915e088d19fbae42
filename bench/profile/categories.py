"""The categories a train step's time is split into: below both the breakdown (analysis) and the roofline."""

CATEGORIES = ("matmul", "attention", "elementwise_norm", "optimizer", "communication", "data", "other")

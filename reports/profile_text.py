"""A step breakdown's categories (profile.json, docs/profile-schema.md) as the report names them.

Words belong to reports/words.py: a profile holds numbers only, and any "sentence" stored in it is ignored.
"""

from __future__ import annotations

CATEGORIES = ("matmul", "attention", "elementwise_norm", "optimizer", "data", "other")
LABELS = {"elementwise_norm": "elementwise/norm"}

# Profiled steps this many times slower than unprofiled ones: the step breakdown says "read shares, not
# times", and the roofline's evidence carries the factor (its rates are lower than the real ones).
PROFILED_SLOWER = 1.3

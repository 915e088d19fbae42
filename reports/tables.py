"""Tables as terminal text and markdown, with every cell made safe for one line of a terminal.

Below both the summary and the tips table, which render through it.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

# C0 and C1 controls (newlines, tabs, ESC and CSI sequences) and the bidirectional overrides that reorder text
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]+")


def one_line(value: Any) -> str:
    """Text for a terminal: control characters (newlines, tabs, escape sequences) become a space, so a
    label from a results file can neither break a table row nor drive the terminal."""
    return _CONTROL.sub(" ", str(value))


def text_table(df: pd.DataFrame) -> str:
    """A plain-text table: columns padded, a rule under the header, one line per row."""
    cells = [list(map(one_line, df.columns))] + [
        [one_line(v) for v in row] for row in df.itertuples(index=False)
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(df.columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def md_table(df: pd.DataFrame) -> str:
    """A markdown table, pipes and backslashes in cells escaped."""

    def esc(v: Any) -> str:
        return one_line(v).replace("\\", "\\\\").replace("|", "\\|")

    lines = ["| " + " | ".join(map(esc, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(map(esc, row)) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)

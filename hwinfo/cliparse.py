"""The argument parser every devicebench command uses: a usage error is one line on stderr, exit 2.

argparse prints its whole usage block before the error, and reports an unknown flag after a subcommand
under the top-level program's name. Here the line names the command that was run and where its help is.
It lives in hwinfo/, the bottom layer, so `hwinfo` and `bench` share it (bench may import hwinfo, never
the reverse).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose usage errors are one line: `PROG: error: MESSAGE (see PROG --help)`."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)

    def parse_args(self, args=None, namespace=None):  # type: ignore[override]
        """As argparse's, but unrecognised arguments are blamed on the (sub)command they were given to."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = getattr(parsed, "command", None)
            owner = (_subparser(self, command) if command else None) or self
            owner.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(name)
    return None

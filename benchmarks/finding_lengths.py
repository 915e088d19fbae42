"""How long each finding of the report reads, on the README's example and on a 16-run, 2-host sweep.

PYTHONPATH=. python benchmarks/finding_lengths.py [--limit 250]

The README example: examples/nanogpt's two logs imported as docs/import.md says. The sweep: the report speed
benchmark's builder (the tests' fixture writer) at 16 runs. Prints each finding's kind and rendered length,
then per case the count over the limit, the median and the longest; exit 1 when any is over the limit.
Run with PYTHONPATH pointing at another checkout to measure that one (the "before").
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "nanogpt"


def import_example(root: Path) -> list[Path]:
    """The two example logs imported with their hwinfo, as docs/import.md does."""
    out = []
    for host, log in (("laptop", "laptop-cpu.log"), ("desktop", "desktop-gpu.log")):
        d = root / host
        cmd = [sys.executable, "-m", "bench", "import", "nanogpt", str(EXAMPLE / log), "--hwinfo",
               str(EXAMPLE / f"{host}-hwinfo.json"), "--out", str(d)]  # fmt: skip
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append(d)
    return out


def sweep(root: Path) -> list[Path]:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_report_speed import build

    return build(root, 16, 500)


def sentences(dirs: list[Path]) -> list[tuple[str, str]]:
    """(kind, the words a reader sees) for every finding."""
    from reports.diagnosis import diagnose
    from reports.load import load_results

    results = load_results(dirs)
    findings = diagnose(results)
    try:
        from reports.words import sentence
    except ImportError:  # a checkout from before reports/words.py: the sentence is stored on the finding
        return [(f.kind, f.sentence) for f in findings]
    return [(f.kind, sentence(f)) for f in findings]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=250)
    p.add_argument("--quiet", action="store_true", help="the totals only")
    args = p.parse_args()
    over_any = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (
            ("README example (examples/nanogpt)", import_example),
            ("16-run 2-host sweep", sweep),
        ):
            found = sentences(make(Path(tmp) / name.split()[0]))
            lengths = [len(s) for _, s in found]
            over = sum(n > args.limit for n in lengths)
            over_any += over
            print(f"{name}: {len(found)} findings")
            if not args.quiet:
                for kind, s in found:
                    print(f"  {len(s):5d}  {kind}")
            if lengths:
                print(
                    f"  {over} of {len(found)} over {args.limit} characters; median {statistics.median(lengths):.0f}, "
                    f"longest {max(lengths)}"
                )
    return 1 if over_any else 0


if __name__ == "__main__":
    sys.exit(main())

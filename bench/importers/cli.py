"""`bench import nanogpt LOGFILE... --out DIR`: nanoGPT train.py logs -> a results directory (schema 1).

Each log becomes one run marked `source: nanogpt-log`, which `bench report` diagnoses like any other.
No torch: the FLOP count and the lr schedule are recomputed from the parsed config.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

FORMATS = ("nanogpt",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", choices=FORMATS, help="what wrote the logs: nanogpt (karpathy/nanoGPT train.py)")
    p.add_argument(
        "logs", nargs="+", metavar="LOGFILE", help="train.py output saved to a file, one run per file"
    )
    p.add_argument(
        "--out", metavar="DIR", required=True, help="results directory to write (must not hold one)"
    )
    p.add_argument(
        "--device-name",
        metavar="NAME",
        help='the device the logs ran on, e.g. "RTX 4070 Ti"; its peak FLOP/s (hwinfo\'s tables) gives the MFU. '
        "Import one device's logs per command",
    )
    p.add_argument("--host", help="label for the machine in reports (default: the first log's file name)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a train.py config value the log does not show (no config echo), e.g. --set batch_size=12; "
        "reported as assumed",
    )


def run(args: argparse.Namespace) -> int:
    from bench import __version__
    from bench.importers import nanogpt
    from bench.metrics import step_summary
    from bench.results import ResultsDir, ResultsError

    out = ResultsDir(Path(args.out))
    if out.exists():
        raise ResultsError(f"{args.out} already holds a results directory: choose another --out")
    user_set = nanogpt.parse_set(args.set)
    host = args.host or Path(args.logs[0]).stem
    device_name = args.device_name.strip() if args.device_name else None

    # Parse every log before writing anything, so a bad file leaves no half-written directory.
    imported = []
    for path in args.logs:
        log = nanogpt.parse_log(_read_log(path), source=path)
        cfg = nanogpt.effective_config(log, user_set)
        for note in cfg.notes:
            print(f"{path}: {note}", file=sys.stderr)
        peak = resolve_peak(cfg.device_type, cfg.dtype, device_name)
        run = nanogpt.build_run(log, cfg, peak, step_summary, str(Path(path).resolve()), host, device_name)
        imported.append((nanogpt.run_id(cfg), run))

    now = datetime.now(UTC)
    out.write_sweep(
        {
            "sweep_id": now.strftime("%Y%m%dT%H%M%SZ") + "-" + host,
            "created": now.isoformat(timespec="seconds"),
            "host": host,
            "source": "nanogpt-log",
            "hwinfo": minimal_hwinfo(host, device_name, imported),
            "software": {
                "python": None,
                "torch": None,
                "cuda": None,
                "hip": None,
                "cudnn": None,
                "numpy": None,
                "platform": None,
            },  # fmt: skip
            "project_version": __version__,
            "spec": {
                "source": "nanogpt-log",
                "logs": [str(Path(p).resolve()) for p in args.logs],
                "set": user_set,
                "device_name": device_name,
            },
            "command": " ".join(["bench", *getattr(args, "argv", [])]),
        }
    )
    used: set[str] = set()
    for rid, run in imported:
        rid = _unique(rid, used)
        writer = out.new_run(rid, run.meta)
        try:
            for row in run.steps:
                writer.step(*row)
            for row in run.evals:
                writer.eval(*row)
        finally:
            writer.close()
        writer.write_meta()
        print(_describe(host, rid, run.meta))
    print(f"wrote {out.root}: `bench report {out.root}` diagnoses it", file=sys.stderr)
    return 0


def _read_log(path: str) -> str:
    from bench.importers.nanogpt import NanoGPTLogError

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise NanoGPTLogError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NanoGPTLogError(f"{path} is a directory, not a log file") from None
    if b"\0" in data[:65536]:
        raise NanoGPTLogError(f"{path} is a binary file, not a nanoGPT train.py log")
    return data.decode("utf-8", errors="replace")


def _unique(rid: str, used: set[str]) -> str:
    out, n = rid, 1
    while out in used:
        n += 1
        out = f"{rid}-{n}"
    used.add(out)
    return out


def resolve_peak(device_type: str, dtype: str, device_name: str | None) -> dict:
    """{"value", "source", "detail"} for the named device from hwinfo's tables; unknown said plainly.

    Never this machine's peak: the log ran elsewhere.
    """
    if not device_name:
        return _unknown(
            f"the log does not name the {device_type} device: pass --device-name to rate MFU against its peak"
        )
    try:
        from hwinfo import peaks
    except ImportError:
        return _unknown(f"{device_name!r}: hwinfo's peak tables are not installed")
    if device_type != "cpu":
        return dict(peaks.gpu_peaks(device_name)[dtype])
    chip = peaks.apple_chip(device_name)
    if chip is None:
        return _unknown(
            f"{device_name!r}: a CPU's peak needs its microarchitecture, core count and clock, which its name "
            "alone does not give (only Apple M-series chips are known by name); `hwinfo` on that machine "
            "shows it"
        )
    spec = peaks.APPLE_CHIPS[chip]
    p_cores, e_cores = spec["configs"][0]
    cpu = {
        "model_name": chip,
        "microarchitecture": f"Apple {chip.split()[1]}",
        "max_mhz": spec["p_mhz"],
        "clock_sources": {"max_mhz": "hwinfo's Apple chip table"},
        "core_groups": [
            {"type": "performance", "count": p_cores, "max_mhz": spec["p_mhz"]},
            {"type": "efficiency", "count": e_cores, "max_mhz": spec["e_mhz"]},
        ],
        "features": ["asimd"],
    }
    peak = dict(peaks.cpu_peaks(cpu).get(dtype) or _unknown(f"{chip}: no {dtype} peak"))
    if peak.get("value") is not None:
        peak["detail"] = f"{chip} ({p_cores}P+{e_cores}E, the fullest configuration): {peak['detail']}"
    return peak


def _unknown(detail: str) -> dict:
    return {"value": None, "source": "unknown", "detail": detail}


def minimal_hwinfo(host: str, device_name: str | None, imported: list) -> dict:
    """What is known of the machine: its label, and the named device. Nothing was probed."""
    devices = []
    seen = set()
    for _, run in imported:
        m = run.meta
        if (m["device"], m["dtype"]) in seen:
            continue
        seen.add((m["device"], m["dtype"]))
        devices.append(
            {
                "device": m["device"],
                "kind": m["device_type"],
                "name": m["device_name"],
                "peaks": {m["dtype"]: m["peak_flops"]},
            }
        )
    kinds = {m.meta["device_type"] for _, m in imported}
    return {
        "schema": "devicebench-hwinfo/1",
        "host": host,
        "os": None,
        "torch": None,
        "cpu": {"model_name": device_name} if device_name and kinds == {"cpu"} else {},
        "gpus": [{"name": device_name}] if device_name and "cuda" in kinds else [],
        "devices": devices,
        "notes": ["imported from nanoGPT train.py logs: this machine was not probed"],
    }


def _describe(host: str, rid: str, meta: dict) -> str:
    """One line per imported run, then its eval spike, for stdout."""
    s = meta["summary"]
    parts = [f"{host}/{rid} <- {Path(meta['source_file']).name}: {meta['status']}, {s['iters_done']} iters"]
    if s.get("ms_median") is not None:
        parts.append(f"{s['ms_median']:.2f} ms/iter median")
        mfu = f"MFU {s['mfu'] * 100:.2f}% of its own peak" if s.get("mfu") is not None else "own peak unknown"
        parts.append(f"{mfu}, {s['mfu_vs_a100'] * 100:.2f}% of an A100 recomputed")
    if s.get("nanogpt_mfu_printed") is not None:
        parts.append(f"nanoGPT printed mfu {s['nanogpt_mfu_printed'] * 100:.2f}%")
    lines = [", ".join(parts)]
    if meta.get("error"):
        lines.append(f"  {meta['error']}")
    spikes = s.get("eval_spikes") or []
    if spikes:
        worst = max(spikes, key=lambda x: x["ms"])
        lines.append(
            f"  iter {worst['iter']}: {worst['ms']:.0f} ms, of which ~{worst['eval_ms_est']:.0f} ms "
            f"{worst['includes']} ({len(spikes)} such iterations kept out of the median)"
        )
    if meta.get("assumed"):
        lines.append(f"  assumed, not in the log: {', '.join(meta['assumed'])}")
    return "\n".join(lines)

"""`bench import nanogpt LOGFILE... --out DIR [--hwinfo FILE]`: nanoGPT train.py logs -> a results directory.

Each log becomes one run marked `source: nanogpt-log`, which `bench report` diagnoses like any other.
No torch: the FLOP count and the lr schedule are recomputed from the parsed config. Every log is read
(streamed) and checked before anything is written; run ids and the host label keep to a safe alphabet
and every run directory is checked to lie inside --out. Reference: docs/import.md.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench import __version__
from bench.importers import machine, nanogpt
from bench.metrics import step_summary
from bench.results import ResultsDir, ResultsError, safe_label
from hwinfo.peaks import parse_peak_flops, user_peak

FORMATS = ("nanogpt",)


# (flags, argparse keywords) in --help's order; --hwinfo and --device-name exclude each other
_OPTIONS = (
    (("format",), dict(choices=FORMATS, help="what wrote the logs: nanogpt (karpathy/nanoGPT train.py)")),
    (("logs",), dict(nargs="+", metavar="LOGFILE", help="train.py output saved to a file, one run per file")),
    (("--out",), dict(metavar="DIR", required=True, help="results directory to write (must not hold one)")),
    (("--hwinfo",), dict(metavar="FILE", help="what `hwinfo --json` printed on the machine that made the logs: "
     "the device's name and its peak FLOP/s per dtype come from it, so MFU is against that device's own peak")),
    (("--device-name",), dict(metavar="NAME", help='without --hwinfo: the device the logs ran on, e.g. "RTX 4070 '
     'Ti" or "Apple M2"; its peak comes from hwinfo\'s tables (an x86 CPU needs --hwinfo). Import one device\'s '
     "logs per command")),
    (("--peak-flops",), dict(action="append", default=[], metavar="DTYPE=VALUE", help="the device's peak FLOP/s "
     "for the log's dtype, e.g. fp32=1.35e12 or bf16=80T; overrides --hwinfo and --device-name, labelled `user`")),
    (("--host",), dict(help="label for the machine in reports (default: the host in --hwinfo, else the first "
     "log's file name)")),
    (("--attempt",), dict(type=int, metavar="N", help="a log holding several attempts (a run started again in one "
     "file): import attempt N (1 is the first) instead of the last one with iteration lines")),
    (("--set",), dict(action="append", default=[], metavar="KEY=VALUE", help="a train.py config value the log "
     "does not show (a refusal names each one it needs), e.g. --set batch_size=12; it outranks the log's own "
     "lines and is reported as assumed")),
)  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    machine_group = None
    for flags, kwargs in _OPTIONS:
        if flags[0] in ("--hwinfo", "--device-name"):
            machine_group = machine_group or p.add_mutually_exclusive_group()
            machine_group.add_argument(*flags, **kwargs)
        else:
            p.add_argument(*flags, **kwargs)


def run(args: argparse.Namespace) -> int:
    out = ResultsDir(Path(args.out))
    if out.exists():
        raise ResultsError(f"{args.out} already holds a results directory: choose another --out")
    user_set = nanogpt.parse_set(args.set)
    try:
        user_peaks = parse_peak_flops(args.peak_flops)
    except ValueError as e:
        raise nanogpt.NanoGPTLogError(str(e)) from None
    snapshot = machine.load_hwinfo(args.hwinfo) if args.hwinfo else None
    host = safe_label(args.host or (snapshot or {}).get("host") or Path(args.logs[0]).stem)
    if args.host and host != args.host:
        print(
            f"--host {args.host!r} is used as {host!r} (letters, digits, '.', '_' and '-' only)",
            file=sys.stderr,
        )
    # printable characters only: the name is echoed on stderr and written into run.json
    device_name = (
        "".join(ch for ch in args.device_name if ch.isprintable()).strip() if args.device_name else None
    )

    # Read and check every log before writing anything, so a bad file leaves no half-written directory.
    imported: list[tuple[str, nanogpt.ParsedLog, nanogpt.EffectiveConfig, nanogpt.ImportedRun]] = []
    messages: list[str] = []  # said once every log has been read, so an error is the only line
    for path in args.logs:
        log = nanogpt.parse_log(nanogpt.read_lines(path), source=path, attempt=args.attempt)
        cfg = nanogpt.effective_config(log, user_set, device_name=device_name or _hwinfo_gpu(snapshot))
        if cfg.device_type == "cuda" and cfg.source["dtype"] == "default" and snapshot is not None:
            cfg = nanogpt.effective_config(
                log, user_set, machine.bf16_supported(snapshot, str(cfg.values["device"]))
            )
        device = str(cfg.values["device"])
        name = device_name
        if snapshot is not None:
            peak, name = machine.peak_from_hwinfo(
                snapshot, args.hwinfo, device, cfg.device_type, cfg.dtype, path
            )
        else:
            peak = machine.peak_from_name(cfg.device_type, cfg.dtype, device_name)
        if user_peaks:
            if cfg.dtype not in user_peaks:
                raise nanogpt.NanoGPTLogError(
                    f"--peak-flops gives {', '.join(user_peaks)} but {path} ran in {cfg.dtype}: "
                    f"add {cfg.dtype}=VALUE"
                )
            peak = user_peak(user_peaks[cfg.dtype], cfg.dtype, name or device)
        elif peak.get("value") is None:
            detail = str(peak.get("detail") or "")
            if "--peak-flops" not in detail:
                hwinfo = "" if snapshot is not None else f"{machine.HWINFO_HINT} or "
                detail += f"; pass {hwinfo}--peak-flops {cfg.dtype}=VALUE"
            messages.append(f"{path}: no MFU against the own peak of {name or device} {cfg.dtype}: {detail}")
        run = nanogpt.build_run(log, cfg, peak, step_summary, str(Path(path).resolve()), host, name)
        messages += [f"{path}: {note}" for note in cfg.notes] + run.warnings
        mfu = run.meta["summary"].get("mfu")
        if mfu is not None and mfu > 1:
            assumed = [k for k in nanogpt.FLOP_KEYS if cfg.source[k] in ("default", "set")]
            suspects = ", ".join(assumed) if assumed else "no config key (all are the log's)"
            messages.append(
                f"{path}: MFU would be {mfu * 100:,.0f}% of the {peak['source']} peak "
                f"({peak.get('detail')}): impossible, so the peak is wrong or one of {suspects} is: "
                "the report flags it, never shows it as a result"
            )
        imported.append((path, log, cfg, run))

    # Run directories: safe ids, each checked to resolve inside --out (no symlink leads out) before any write.
    root = out.root.resolve()
    used: set[str] = set()
    run_dirs = []
    for _path, _log, cfg, _run in imported:
        rid = _unique(safe_label(nanogpt.run_id(cfg)), used)
        if not out.run_dir(rid).resolve().is_relative_to(root):
            raise ResultsError(f"{out.run_dir(rid)} resolves outside {out.root}: refusing to write there")
        run_dirs.append(rid)
    for line in messages:
        print(line, file=sys.stderr)

    now = datetime.now(UTC)
    sweep = {
        "sweep_id": now.strftime("%Y%m%dT%H%M%SZ") + "-" + host,
        "created": now.isoformat(timespec="seconds"),
        "host": host,
        "source": "nanogpt-log",
        "hwinfo": machine.imported_hwinfo(snapshot, args.hwinfo)
        if snapshot is not None
        else machine.minimal_hwinfo(host, device_name, [run.meta for *_, run in imported]),
        "software": dict.fromkeys(("python", "torch", "cuda", "hip", "cudnn", "numpy", "platform")),
        "project_version": __version__,
        "spec": {
            "source": "nanogpt-log",
            "logs": [str(Path(p).resolve()) for p in args.logs],
            "set": user_set,
            "device_name": device_name,
            "hwinfo_file": str(Path(args.hwinfo).resolve()) if args.hwinfo else None,
            "peak_flops": user_peaks,
        },
        "command": " ".join(["bench", *getattr(args, "argv", [])]),
    }
    try:
        out.write_sweep(sweep)
        for rid, (path, log, cfg, run) in zip(run_dirs, imported, strict=True):
            writer = out.new_run(rid, run.meta)
            try:
                for kind, row in nanogpt.run_rows(nanogpt.read_lines(path), cfg, log.attempt):
                    if kind == "step":
                        writer.step(*row)
                    else:
                        writer.eval(*row)
            finally:
                writer.close()
            writer.write_meta()
            print(_describe(host, rid, run.meta))
    except OSError as e:  # --out not writable, a file where a directory should be, a full disk
        raise ResultsError(f"cannot write the results: {e.filename or args.out}: {e.strerror or e}") from None
    print(f"wrote {out.root}: `bench report {out.root}` diagnoses it", file=sys.stderr)
    return 0


def _hwinfo_gpu(snapshot: dict | None) -> str | None:
    """A GPU's name in a hwinfo snapshot, for a refusal's device example."""
    for d in (snapshot or {}).get("devices") or []:
        if d.get("device", "").startswith(("cuda", "mps")):
            return str(d.get("name") or d["device"])
    return None


def _unique(rid: str, used: set[str]) -> str:
    out, n = rid, 1
    while out in used:
        n += 1
        out = f"{rid}-{n}"
    used.add(out)
    return out


def _describe(host: str, rid: str, meta: dict) -> str:
    """One line per imported run, then its eval spikes and iteration 0, for stdout."""
    s = meta["summary"]
    parts = [f"{host}/{rid} <- {Path(meta['source_file']).name}: {meta['status']}, {s['iters_done']} iters"]
    if s.get("ms_median") is not None:
        parts.append(f"{s['ms_median']:.2f} ms/iter median")
        if s.get("mfu") is not None and s["mfu"] > 1:
            mfu = "MFU impossible (above 100% of the peak given)"
        elif s.get("mfu") is not None:
            mfu = f"MFU {s['mfu'] * 100:.2f}% of its own peak"
        else:
            mfu = "own peak unknown"
        if s.get("withheld"):
            parts.append("tokens/s and MFUs withheld (see above)")
        else:
            parts.append(f"{mfu}, {s['mfu_vs_a100'] * 100:.2f}% of an A100 recomputed")
    if s.get("nanogpt_mfu_printed") is not None:
        parts.append(f"nanoGPT printed mfu {s['nanogpt_mfu_printed'] * 100:.2f}%")
    lines = [", ".join(parts)]
    if meta.get("error"):
        lines.append(f"  {meta['error']}")
    spikes = s.get("eval_spikes") or []
    later = [x for x in spikes if not x.get("first")]
    if later:
        worst = max(later, key=lambda x: x["ms"])
        lines.append(
            f"  iter {worst['iter']}: {worst['ms']:.0f} ms, of which ~{worst['eval_ms_est']:.0f} ms "
            f"{worst['includes']} ({s.get('eval_spikes_count', len(spikes))} after-eval iterations kept out of "
            "the median)"
        )
    if spikes and spikes[0].get("first"):
        first = spikes[0]
        lines.append(
            f"  iter {first['iter']}: {first['ms']:.0f} ms = ~{first['eval_ms_est']:.0f} ms eval + "
            f"~{first['startup_ms_est']:.0f} ms {first['includes'].removeprefix('eval + ')} + the step"
        )
    if meta.get("assumed"):
        lines.append(f"  assumed, not in the log: {', '.join(meta['assumed'])}")
    return "\n".join(lines)

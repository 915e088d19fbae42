"""The roofs a profile's categories are placed under: compute (the run's peak, a timed matmul) and memory
(datasheet, STREAM copy and triad), each with its source. `RoofMeter` measures once per device (and dtype),
between runs, never during a timed step.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hwinfo import measure as hw_measure
from hwinfo.measure import NotMeasurable
from hwinfo.peaks import bandwidth_for
from hwinfo.units import bytes_per_s, flops, is_num


def _entry(hw: dict, device: str) -> dict:
    """The snapshot's entry for a device ("cuda" is "cuda:0"), or {}."""
    wanted = {device, f"{device}:0"} if ":" not in device else {device, device.removesuffix(":0")}
    for entry in (hw or {}).get("devices") or []:
        if isinstance(entry, dict) and entry.get("device") in wanted:
            return entry
    return {}


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


class RoofMeter:
    """Roofs per (device, dtype) for `profile_steps(roofs=...)`, measuring what is missing once.

    measure_bandwidth / measure_matmul default to hwinfo.measure's (tests pass fakes); progress gets one
    line per measurement.
    """

    def __init__(
        self,
        hw: dict,
        measure_bandwidth: Callable[..., dict] | None = None,
        measure_matmul: Callable[..., dict] | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.hw = hw or {}
        self._measure_bandwidth = measure_bandwidth
        self._measure_matmul = measure_matmul
        self._progress = progress or (lambda _msg: None)
        self._memory: dict[tuple[str, int | None], list[dict]] = {}
        self._matmul: dict[tuple[str, str, int | None], dict | None] = {}

    def roofs(
        self, device: str, dtype: str, peak: dict | None, threads: int | None = None
    ) -> dict[str, list[dict]]:
        """{"compute": [...], "memory": [...]}: each roof {"value", "source", "label", "detail", ...}.

        peak: the run's peak ({"value", "source", "detail"}: run.json's peak_flops), listed first.
        threads: the CPU threads the run uses (None off the CPU): what is measured is measured with them,
        once per device, dtype and thread count; call it with those threads set.
        """
        compute = []
        if peak and is_num(peak.get("value")) and float(peak["value"]) > 0:
            compute.append(
                {
                    "value": float(peak["value"]),
                    "source": str(peak.get("source") or "unknown"),
                    "label": f"{dtype} peak ({peak.get('source')})",
                    "detail": str(peak.get("detail") or ""),
                }
            )
        measured = self._matmul_roof(device, dtype, threads)
        if measured and not any(
            r["source"] == "measured" and abs(r["value"] - measured["value"]) <= 1e-9 * r["value"]
            for r in compute
        ):
            compute.append(measured)
        return {"compute": compute, "memory": self._memory_roofs(device, threads)}

    def _snapshot_threads(self, threads: int | None) -> bool:
        """Whether figures in the snapshot (hwinfo --measure: default threads) hold for these threads."""
        return threads is None or threads == (self.hw.get("cpu") or {}).get("torch_threads")

    def _memory_roofs(self, device: str, threads: int | None) -> list[dict]:
        if (device, threads) in self._memory:
            return self._memory[device, threads]
        roofs = []
        spec = bandwidth_for(self.hw, device)
        if spec.get("source") in ("spec", "derived") and is_num(spec.get("value")):
            roofs.append(
                {
                    "value": float(spec["value"]),
                    "source": spec["source"],
                    "label": f"bandwidth ({spec['source']})",
                    "detail": spec.get("detail") or "",
                }
            )
        entry = _entry(self.hw, device)
        stream = ((entry.get("memory_bandwidth") or {}).get("stream")) or None
        how = "hwinfo --measure"
        if not (
            isinstance(stream, dict) and is_num(stream.get("triad_bytes_per_s"))
        ) or not self._snapshot_threads(threads):
            stream, how = self._stream(device, entry.get("llc_bytes")), "measured for this profile"
        if stream:
            size = (
                f"float32 arrays of {stream['array_bytes'] / 1e6:.0f} MB"
                if is_num(stream.get("array_bytes"))
                else ""
            )
            if threads is not None:
                size += f", {threads} threads"
            load = stream.get("loadavg_1m")
            for kind, formula in (("triad", "a = b + 3c"), ("copy", "c = a")):
                value = stream.get(f"{kind}_bytes_per_s")
                if is_num(value) and value > 0:
                    roofs.append(
                        {
                            "value": float(value),
                            "source": "measured",
                            "kind": kind,
                            "label": f"STREAM {kind} (measured)",
                            "detail": f"STREAM {kind} ({formula}) {bytes_per_s(value)}, {size}, {how}"
                            + (f"; load average {load:.1f} while measuring" if is_num(load) else ""),
                            "loadavg_1m": load,
                        }
                    )
        self._memory[device, threads] = roofs
        return roofs

    def _stream(self, device: str, llc_bytes: Any) -> dict | None:
        measure = self._measure_bandwidth or hw_measure.measure_bandwidth
        self._progress(f"{device}: measuring memory bandwidth (STREAM copy and triad) for the roofline ...")
        load = _loadavg()
        try:
            result = measure(device, llc_bytes=llc_bytes if is_num(llc_bytes) else None)
        except Exception as e:  # noqa: BLE001 - no measured roof: the roofline says the bandwidth is unknown
            self._progress(f"{device}: bandwidth not measured ({type(e).__name__}: {e})")
            return None
        self._progress(
            f"{device}: triad {bytes_per_s(result['triad_bytes_per_s'])}, copy {bytes_per_s(result['copy_bytes_per_s'])}"
        )
        return {**result, "loadavg_1m": load}

    def _matmul_roof(self, device: str, dtype: str, threads: int | None) -> dict | None:
        key = (device, dtype, threads)
        if key in self._matmul:
            return self._matmul[key]
        peak = (_entry(self.hw, device).get("peaks") or {}).get(dtype) or {}
        if is_num(peak.get("measured")) and peak["measured"] > 0 and self._snapshot_threads(threads):
            roof = {
                "value": float(peak["measured"]),
                "source": "measured",
                "label": f"{dtype} matmul (measured)",
                "detail": f"hwinfo --measure: {peak.get('measured_detail') or 'timed matmul'}",
            }
        else:
            roof = self._time_matmul(device, dtype, threads)
        self._matmul[key] = roof
        return roof

    def _time_matmul(self, device: str, dtype: str, threads: int | None) -> dict | None:
        measure = self._measure_matmul or hw_measure.measure_matmul
        self._progress(f"{device}: timing a {dtype} matmul for the roofline ...")
        load = _loadavg()
        try:
            r = measure(device, dtype)
        except NotMeasurable:
            return None
        except Exception as e:  # noqa: BLE001 - no measured compute roof; the run's peak remains
            self._progress(f"{device}: {dtype} matmul not timed ({type(e).__name__}: {e})")
            return None
        self._progress(f"{device}: {dtype} matmul {flops(r['flops_per_s'])}")
        return {
            "value": float(r["flops_per_s"]),
            "source": "measured",
            "label": f"{dtype} matmul (measured)",
            "detail": f"torch.matmul {r['n']}x{r['n']} {dtype}, median of {r['repeats']} repeats"
            + (f", {threads} threads" if threads is not None else "")
            + (f"; load average {load:.1f} while measuring" if is_num(load) else ""),
            "loadavg_1m": load,
        }

"""Energy from real counters only: RAPL (CPU package and DRAM) through Linux powercap, NVML for NVIDIA GPUs.

A device without a counter this user can read is "unavailable" with the exact reason (which file is
missing or unreadable, and how to grant access): never an estimate from TDP. Read a meter at phase
boundaries, not per step: one read can take milliseconds.

    meter = open_energy_meter("cpu")        # or ("cuda", 0)
    if meter.available:
        j0 = meter.read_joules(); ...; joules = meter.read_joules() - j0
    meter.close()

Everything the readers touch is injectable: `root` for a fake sysfs tree, `nvml` for a fake pynvml.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwinfo.units import is_positive, positive

POWERCAP = "sys/class/powercap"
RAPL_GRANT = (
    "energy_uj is readable by root only since Linux closed CVE-2020-8694 (the Platypus attack); to let "
    "this user read it until the next boot: sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj "
    "/sys/class/powercap/intel-rapl:*:*/energy_uj (a udev rule or sysfsutils entry makes it permanent, "
    "preferably for a group rather than everyone)"
)
MIG_NO_ENERGY = (
    "a GPU in MIG mode: NVML's energy counter and power readings are the whole GPU's, shared by every MIG "
    "instance on it, so none is one slice's"
)
_NVML_POLL_S = 0.1  # NVIDIA's power readings update about every 100 ms
_RAPL_POLL_S = 20.0  # well inside the shortest wrap period (a 262 kJ range at ~1 kW is ~4 minutes)
# The plausibility band of a device's mean power over a phase (the checks the figures pass before they are
# recorded or shown): above PLAUSIBLE_MULTIPLE x its power limit, or below MIN_LOAD_WATTS (or half of its
# own idle reading) while it trains, a counter is broken, not a measurement.
PLAUSIBLE_MULTIPLE = 2.0
MIN_LOAD_WATTS = 0.5
FALLBACK_CPU_WATTS_PER_LOGICAL_CPU = 25.0  # no RAPL power limit readable: a generous per-thread allowance
FALLBACK_GPU_WATTS = 1200.0  # no NVML power limit readable: above the largest GPU board power (B200, 1 kW)
COUNTER_SOURCES = ("rapl", "nvml_energy", "nvml_power_samples")
_ZONE_RE = re.compile(r"^intel-rapl(-mmio)?:(\d+)(?::(\d+))?$")
_DIE_RE = re.compile(r"^package-(\d+)-die-(\d+)$")


class EnergyUnavailable(RuntimeError):
    """read_joules on a meter that has no counter, or a counter that stopped answering or is broken."""


@dataclass(frozen=True)
class PowerBand:
    """The mean power a device can plausibly draw while it trains: [low_watts, high_watts], and why."""

    low_watts: float
    high_watts: float
    basis: str

    def check(self, watts: float, what: str = "mean power") -> str | None:
        """None when `watts` is inside the band, else why the figure is not a measurement."""
        if not is_positive(watts):
            return f"its {what} is {watts!r} W, not a positive figure"
        if watts > self.high_watts:
            return (
                f"its {what} of {watts:,.0f} W is above the plausible ceiling of {self.high_watts:,.0f} W "
                f"({self.basis}): a broken or misread counter"
            )
        if watts < self.low_watts:
            return (
                f"its {what} of {watts:.3g} W is below the {self.low_watts:.3g} W floor of a device at work "
                "(a counter that barely moves is not measuring this device)"
            )
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"low_watts": self.low_watts, "high_watts": self.high_watts, "basis": self.basis}


def _band(
    limit_watts: float | None, limit_basis: str, fallback_watts: float, fallback_basis: str
) -> PowerBand:
    """PLAUSIBLE_MULTIPLE x the power limit when one is known, else x the fallback allowance."""
    if is_positive(limit_watts):
        limit = float(limit_watts)  # type: ignore[arg-type]
        basis = f"the {limit:,.0f} W power limit" + (f" ({limit_basis})" if limit_basis else "")
    else:
        limit, basis = fallback_watts, fallback_basis
    return PowerBand(MIN_LOAD_WATTS, PLAUSIBLE_MULTIPLE * limit, f"{PLAUSIBLE_MULTIPLE:g}x {basis}")


def cpu_band(power_limit_watts: float | None, logical_cpus: int | None, limit_basis: str = "") -> PowerBand:
    """The band of a CPU package (RAPL); without a power limit, FALLBACK_CPU_WATTS_PER_LOGICAL_CPU per CPU."""
    cpus = logical_cpus if isinstance(logical_cpus, int) and logical_cpus > 0 else 1
    per_cpu = FALLBACK_CPU_WATTS_PER_LOGICAL_CPU
    why = f"{per_cpu:g} W per logical CPU for {cpus} CPUs: no RAPL power limit was readable"
    return _band(power_limit_watts, limit_basis, per_cpu * cpus, why)


def gpu_band(power_limit_watts: float | None, limit_basis: str = "") -> PowerBand:
    """The band of a GPU: its enforced power limit, or FALLBACK_GPU_WATTS without one."""
    why = f"{FALLBACK_GPU_WATTS:,.0f} W: no GPU power limit was readable"
    return _band(power_limit_watts, limit_basis, FALLBACK_GPU_WATTS, why)


def band_for_device(device_type: str, hwinfo: dict | None) -> PowerBand:
    """A band for a run that recorded none (older files): from the hwinfo snapshot of its machine."""
    if device_type == "cpu":
        cpu = (hwinfo or {}).get("cpu") if isinstance(hwinfo, dict) else None
        logical = cpu.get("logical_cores") if isinstance(cpu, dict) else None
        return cpu_band(None, logical if isinstance(logical, int) else None)
    gpus = (hwinfo or {}).get("gpus") if isinstance(hwinfo, dict) else None
    limits = [positive(g.get("power_limit_w")) for g in gpus or [] if isinstance(g, dict)]
    known = [w for w in limits if w is not None]
    return gpu_band(max(known), "the highest NVML power limit in hwinfo") if known else gpu_band(None)


class EnergyMeter:
    """Cumulative joules since open from one device's counter.

    available: a counter this user can read was found. source: "rapl", "nvml_energy",
    "nvml_power_samples" or "unavailable". reason: why not (None when available). domains: what is
    summed ("package-0", "package-0/dram", "GPU 0 ..."). detail: how the figure is obtained.
    """

    source = "unavailable"

    def __init__(self, reason: str | None = None, domains: list[str] | None = None, detail: str = "") -> None:
        self.reason = reason
        self.domains = list(domains or [])
        self.detail = detail or (reason or "")
        self.band: PowerBand | None = None  # what this device can plausibly draw (None: no counter)
        self._closed = False

    @property
    def available(self) -> bool:
        return self.source != "unavailable"

    def read_joules(self) -> float:
        """Joules since the meter was opened (counter wraps corrected)."""
        raise EnergyUnavailable(self.reason or "no energy counter")

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> EnergyMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} source={self.source} domains={self.domains} reason={self.reason!r}>"


class _Poller:
    """A daemon thread calling `tick` every `interval_s` until stopped."""

    def __init__(self, tick: Callable[[], None], interval_s: float, name: str) -> None:
        self._stop = threading.Event()
        self._tick = tick
        self._interval_s = interval_s
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self._tick()
            except Exception:
                return  # the next read_joules reports the failure

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------------
# RAPL through powercap


@dataclass
class RaplZone:
    """One RAPL counter: its name ("package-0", "package-0/dram"), energy_uj and wrap range."""

    name: str
    energy_path: Path
    max_range_uj: int
    power_limit_uw: int | None = None  # the highest of its RAPL power limits (constraint_N_power_limit_uw)


@dataclass
class RaplDiscovery:
    """What /sys/class/powercap offers: the zones to sum, why none can be read, what was skipped and why."""

    zones: list[RaplZone] = field(default_factory=list)
    reason: str | None = None
    skipped: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)  # offered, readable or not

    @property
    def readable(self) -> bool:
        return bool(self.zones) and self.reason is None


def _read_text(path: Path) -> str:
    return path.read_text(errors="replace").strip()


def _read_uj(path: Path) -> int:
    """An integer counter file; OSError or ValueError when it cannot be read."""
    text = _read_text(path)
    if not text.isdigit():
        raise ValueError(f"{path} holds {text[:40]!r}, not a counter")
    return int(text)


def _display(path: Path, root: str) -> str:
    """The path as it is on the machine (without a test's fake root)."""
    rel = os.path.relpath(path, root)
    return "/" + rel if not rel.startswith("..") else str(path)


def discover_rapl(root: str = "/") -> RaplDiscovery:
    """RAPL package and DRAM counters under {root}/sys/class/powercap, checked for readability.

    Kept: top-level "package-N" zones and their "dram" subzones. Skipped, each with the reason: psys
    (the platform: it contains the package), core/uncore (inside the package), the MMIO interface when
    the MSR one is there (the same package counter twice), and repeated counters (the same name twice,
    or a per-die zone reading exactly what another die of its package reads).
    """
    found = RaplDiscovery()
    base = Path(root, POWERCAP)
    shown = _display(base, root)
    if not base.is_dir():
        if root == "/" and not sys.platform.startswith("linux"):
            found.reason = f"RAPL is read through Linux powercap; this is {sys.platform}, which devicebench reads no CPU counter on"
        else:
            found.reason = (
                f"no RAPL counters: {shown} does not exist (no powercap driver: a VM or container, a CPU "
                "without RAPL, or the intel_rapl_msr module not loaded)"
            )
        return found
    entries = []
    try:
        names = sorted(os.listdir(base))
    except OSError as exc:
        found.reason = f"no RAPL counters: cannot list {shown} ({exc.strerror or exc})"
        return found
    for entry in names:
        m = _ZONE_RE.match(entry)
        if m:
            entries.append((bool(m.group(1)), int(m.group(2)), m.group(3), base / entry))
    if not entries:
        found.reason = (
            f"no RAPL counters: {shown} has no intel-rapl zones (found: {', '.join(names) or 'nothing'})"
        )
        return found
    has_msr = any(not mmio for mmio, *_ in entries)
    parents: dict[tuple[bool, int], str] = {}
    candidates: list[tuple[str, Path]] = []
    for mmio, top, sub, path in sorted(entries, key=lambda e: (e[0], e[1], e[2] is not None, int(e[2] or 0))):
        try:
            name = _read_text(path / "name")
        except OSError:
            found.skipped.append(f"{path.name}: no readable name")
            continue
        if mmio and has_msr:
            found.skipped.append(f"{path.name} ({name}): the MMIO interface repeats the MSR counters")
            continue
        if sub is None:
            parents[(mmio, top)] = name
            if name == "psys":
                found.skipped.append(f"{path.name} (psys): the whole platform, which contains the package")
                continue
            if not name.startswith("package"):
                found.skipped.append(f"{path.name} ({name}): not a package or DRAM counter")
                continue
            candidates.append((name, path))
        else:
            parent = parents.get((mmio, top), f"zone-{top}")
            if name != "dram":
                found.skipped.append(f"{path.name} ({parent}/{name}): inside the package counter")
                continue
            if parent == "psys":
                found.skipped.append(f"{path.name} (psys/dram): under psys")
                continue
            candidates.append((f"{parent}/dram", path))
    seen: set[str] = set()
    unique: list[tuple[str, Path]] = []
    for name, path in candidates:
        if name in seen:
            found.skipped.append(f"{path.name} ({name}): the same counter repeated")
            continue
        seen.add(name)
        unique.append((name, path))
    unique = _drop_repeated_dies(unique, found.skipped)
    found.domains = [name for name, _ in unique]
    for name, path in unique:
        zone, why = _check_zone(name, path, root)
        if zone is None:
            found.reason = found.reason or why
        else:
            found.zones.append(zone)
    if found.reason:
        found.zones = []
    elif not found.zones:
        found.reason = (
            "no RAPL package or DRAM counter under "
            + shown
            + (f" (skipped: {'; '.join(found.skipped)})" if found.skipped else "")
        )
    return found


def _check_zone(name: str, path: Path, root: str) -> tuple[RaplZone | None, str | None]:
    """The zone when this user can read its counter and wrap range, else (None, the exact reason)."""
    energy = path / "energy_uj"
    shown = _display(energy, root)
    try:
        _read_uj(energy)
        max_range = _read_uj(path / "max_energy_range_uj")
    except PermissionError as exc:
        where = _display(Path(exc.filename), root) if exc.filename else shown
        return None, f"RAPL counter {where} ({name}) is not readable by this user: {RAPL_GRANT}"
    except FileNotFoundError as exc:
        return (
            None,
            f"RAPL zone {name}: {_display(Path(exc.filename), root) if exc.filename else shown} is missing",
        )
    except (OSError, ValueError) as exc:
        return None, f"RAPL zone {name}: {shown} cannot be read ({exc})"
    if max_range <= 0:
        return None, f"RAPL zone {name}: max_energy_range_uj is {max_range}, so its wrap cannot be corrected"
    return RaplZone(name, energy, max_range, _power_limit_uw(path)), None


def _power_limit_uw(path: Path) -> int | None:
    """The highest readable, positive constraint_N_power_limit_uw of a zone (PL2 where it is set)."""
    limits = []
    for f in sorted(path.glob("constraint_*_power_limit_uw")):
        try:
            value = _read_uj(f)
        except (OSError, ValueError):
            continue
        if value > 0:
            limits.append(value)
    return max(limits) if limits else None


def rapl_band(zones: list[RaplZone], logical_cpus: int | None = None) -> PowerBand:
    """The band of the summed zones: the packages' power limits when every package has one, else per CPU."""
    packages = [z for z in zones if not z.name.endswith("/dram")]
    if packages and all(z.power_limit_uw for z in packages):
        watts = sum(z.power_limit_uw or 0 for z in packages) / 1e6
        return cpu_band(
            watts, None, "RAPL constraint_N_power_limit_uw of " + ", ".join(z.name for z in packages)
        )
    return cpu_band(None, logical_cpus if logical_cpus is not None else os.cpu_count())


def _drop_repeated_dies(zones: list[tuple[str, Path]], skipped: list[str]) -> list[tuple[str, Path]]:
    """Per-die zones of one package that read exactly the same counter value are one counter shown twice."""
    kept: list[tuple[str, Path]] = []
    first_die: dict[str, tuple[int | None, Path]] = {}
    for name, path in zones:
        m = _DIE_RE.match(name)
        if not m:
            kept.append((name, path))
            continue
        try:
            value: int | None = _read_uj(path / "energy_uj")
        except (OSError, ValueError):
            value = None
        package = m.group(1)
        if package in first_die:
            first_value, first_path = first_die[package]
            if value is not None and value == first_value:
                skipped.append(f"{path.name} ({name}): reads the same counter as {first_path.name}")
                continue
        else:
            first_die[package] = (value, path)
        kept.append((name, path))
    return kept


class RaplMeter(EnergyMeter):
    """Sum of RAPL package (and DRAM) counters, each corrected for its wrap at max_energy_range_uj.

    A background thread reads the counters every `poll_s` so that no counter wraps twice unseen.
    """

    source = "rapl"

    def __init__(
        self,
        zones: list[RaplZone],
        poll_s: float | None = _RAPL_POLL_S,
        band: PowerBand | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            None,
            [z.name for z in zones],
            "RAPL energy counters (" + ", ".join(z.name for z in zones) + ") through /sys/class/powercap",
        )
        self._zones = zones
        self.band = band or rapl_band(zones)
        self._clock = clock
        self._lock = threading.Lock()
        self._last = [_read_uj(z.energy_path) for z in zones]
        self._last_t = clock()
        self._last_wrap_t: list[float | None] = [None] * len(zones)
        self._broken: str | None = None
        self._total_uj = 0
        self._poller = _Poller(self._update, poll_s, "rapl-poll") if poll_s else None

    def _wrap_or_broken(self, i: int, before: int, now: int, t: float) -> str | None:
        """None when a step backwards can be the counter's wrap, else why the counter is broken: a wrap
        that would mean more energy than the device can draw in the time since the last read, or a second
        step backwards sooner than the device could count through its whole range."""
        zone, ceiling = self._zones[i], self.band.high_watts if self.band else FALLBACK_GPU_WATTS
        wrapped_j = (now - before + zone.max_range_uj) / 1e6
        dt = t - self._last_t
        if wrapped_j > ceiling * max(dt, 1.0):
            return (
                f"RAPL counter {zone.name} ran backwards ({before} -> {now} uJ): as a wrap that is "
                f"{wrapped_j:,.0f} J in {dt:.3g} s, beyond the {ceiling:,.0f} W ceiling, so the counter is broken"
            )
        last_wrap = self._last_wrap_t[i]
        full_range_s = zone.max_range_uj / 1e6 / ceiling
        if last_wrap is not None and t - last_wrap < full_range_s:
            return (
                f"RAPL counter {zone.name} ran backwards twice within {t - last_wrap:.3g} s; even at the "
                f"{ceiling:,.0f} W ceiling one wrap takes {full_range_s:.3g} s, so the counter is broken"
            )
        return None

    def _update(self) -> None:
        with self._lock:
            if self._broken:
                raise EnergyUnavailable(self._broken)
            t = self._clock()
            for i, zone in enumerate(self._zones):
                try:
                    now = _read_uj(zone.energy_path)
                except (OSError, ValueError) as exc:
                    raise EnergyUnavailable(
                        f"RAPL counter {zone.energy_path} stopped answering: {exc}"
                    ) from exc
                delta = now - self._last[i]
                if delta < 0:
                    broken = self._wrap_or_broken(i, self._last[i], now, t)
                    if broken:
                        self._broken = broken
                        raise EnergyUnavailable(broken)
                    delta += zone.max_range_uj
                    self._last_wrap_t[i] = t
                self._total_uj += delta
                self._last[i] = now
            self._last_t = t

    def read_joules(self) -> float:
        if self._closed:
            raise EnergyUnavailable("the meter is closed")
        self._update()
        return self._total_uj / 1e6

    def close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        super().close()


# ---------------------------------------------------------------------------------------------------
# NVML


def _nvml_module(nvml: Any) -> tuple[Any, str | None]:
    if nvml is not None:
        return nvml, None
    try:
        import pynvml
    except ImportError as exc:
        return None, f"NVML not available: nvidia-ml-py is not installed ({exc})"
    return pynvml, None


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def nvml_energy_support(nvml: Any, handle: Any) -> tuple[str, str | None]:
    """("nvml_energy" | "nvml_power_samples" | "unavailable", reason) for one NVML device handle."""
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return "nvml_energy", None
    except Exception as energy_exc:
        try:
            nvml.nvmlDeviceGetPowerUsage(handle)
            return "nvml_power_samples", (
                f"no energy counter (nvmlDeviceGetTotalEnergyConsumption: {_err(energy_exc)}; it needs Volta "
                "or newer): power samples integrated over time instead"
            )
        except Exception as power_exc:
            return "unavailable", (
                f"NVML offers neither an energy counter (nvmlDeviceGetTotalEnergyConsumption: {_err(energy_exc)}) "
                f"nor power readings (nvmlDeviceGetPowerUsage: {_err(power_exc)}) for this GPU"
            )


def _cuda_handle(nvml: Any, index: int) -> tuple[Any, str]:
    """The NVML handle of CUDA device `index`: by PCI bus id when torch is loaded, else through
    CUDA_VISIBLE_DEVICES, else NVML's own index (NVML numbers GPUs in PCI order)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available() and getattr(torch.version, "hip", None) is None:
                props = torch.cuda.get_device_properties(index)
                bus = f"{int(props.pci_domain_id):08x}:{int(props.pci_bus_id):02x}:{int(props.pci_device_id):02x}.0"
                return nvml.nvmlDeviceGetHandleByPciBusId(bus), f"PCI bus {bus}"
        except Exception:
            pass
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if visible and index < len(visible):
        target = visible[index]
        if target.isdigit():
            return nvml.nvmlDeviceGetHandleByIndex(int(target)), f"NVML index {target} (CUDA_VISIBLE_DEVICES)"
        if target.startswith(("GPU-", "MIG-")):
            return nvml.nvmlDeviceGetHandleByUUID(target), f"{target} (CUDA_VISIBLE_DEVICES)"
    return nvml.nvmlDeviceGetHandleByIndex(
        index
    ), f"NVML index {index} (CUDA's order assumed to be PCI order)"


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class NvmlEnergyMeter(EnergyMeter):
    """nvmlDeviceGetTotalEnergyConsumption: the GPU's energy counter (mJ since the driver loaded)."""

    source = "nvml_energy"

    def __init__(self, nvml: Any, handle: Any, label: str) -> None:
        super().__init__(
            None,
            [label],
            f"NVML energy counter of {label} (nvmlDeviceGetTotalEnergyConsumption, mJ; updated about every "
            "100 ms, so read it over phases well above that)",
        )
        self._nvml, self._handle = nvml, handle
        self.band = _nvml_band(nvml, handle)
        self._start_mj = int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))

    def read_joules(self) -> float:
        if self._closed:
            raise EnergyUnavailable("the meter is closed")
        try:
            now = int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle))
        except Exception as exc:
            raise EnergyUnavailable(f"NVML energy counter stopped answering: {_err(exc)}") from exc
        return (now - self._start_mj) / 1000

    def close(self) -> None:
        if not self._closed:
            _shutdown(self._nvml)
        super().close()


class NvmlPowerSampleMeter(EnergyMeter):
    """No energy counter (before Volta): power readings (mW) from a sampling thread, integrated over time
    with the trapezoid rule. Labelled as such: an integral of samples, not a counter."""

    source = "nvml_power_samples"

    def __init__(
        self,
        nvml: Any,
        handle: Any,
        label: str,
        interval_s: float = _NVML_POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            None,
            [label],
            f"power samples of {label} every {interval_s * 1000:.0f} ms (nvmlDeviceGetPowerUsage, mW) "
            "integrated over time: no energy counter on this GPU, so an approximation",
        )
        self._nvml, self._handle, self._clock = nvml, handle, clock
        self.band = _nvml_band(nvml, handle)
        self._lock = threading.Lock()
        self._joules = 0.0
        self._last = (clock(), self._watts())
        self._poller: _Poller | None = _Poller(self._sample, interval_s, "nvml-power") if interval_s else None

    def _watts(self) -> float:
        return int(self._nvml.nvmlDeviceGetPowerUsage(self._handle)) / 1000

    def _sample(self) -> None:
        with self._lock:
            now, watts = self._clock(), self._watts()
            t0, w0 = self._last
            self._joules += (now - t0) * (w0 + watts) / 2
            self._last = (now, watts)

    def read_joules(self) -> float:
        if self._closed:
            raise EnergyUnavailable("the meter is closed")
        try:
            self._sample()
        except Exception as exc:
            raise EnergyUnavailable(f"NVML power readings stopped answering: {_err(exc)}") from exc
        return self._joules

    def close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        if not self._closed:
            _shutdown(self._nvml)
        super().close()


def _nvml_band(nvml: Any, handle: Any) -> PowerBand:
    """The GPU's band from its enforced power limit (mW), else the fallback."""
    for call in ("nvmlDeviceGetEnforcedPowerLimit", "nvmlDeviceGetPowerManagementLimit"):
        try:
            mw = getattr(nvml, call)(handle)
        except Exception:
            continue
        if is_positive(mw):
            return gpu_band(float(mw) / 1000, call)
    return gpu_band(None)


def mig_enabled(nvml: Any, handle: Any) -> bool:
    """Whether the GPU behind `handle` runs in MIG mode (then CUDA uses one of its slices, never the whole GPU).
    A GPU without MIG answers NVML_ERROR_NOT_SUPPORTED: not MIG."""
    try:
        current = nvml.nvmlDeviceGetMigMode(handle)[0]
    except Exception:
        return False
    return current == getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1)


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        pass


def _open_nvml(index: int, nvml: Any, poll_s: float | None) -> EnergyMeter:
    module, why = _nvml_module(nvml)
    if module is None:
        return EnergyMeter(why)
    try:
        module.nvmlInit()
    except Exception as exc:
        return EnergyMeter(f"NVML not available ({_err(exc)}): no NVIDIA driver, or not an NVIDIA GPU")
    try:
        handle, how = _cuda_handle(module, index)
        name = _text(module.nvmlDeviceGetName(handle))
        label = f"GPU {index} {name} ({how})"
        if mig_enabled(module, handle):
            _shutdown(module)
            return EnergyMeter(f"{label}: {MIG_NO_ENERGY}")
        source, reason = nvml_energy_support(module, handle)
        if source == "nvml_energy":
            return NvmlEnergyMeter(module, handle, label)
        if source == "nvml_power_samples":
            return NvmlPowerSampleMeter(module, handle, label, _NVML_POLL_S if poll_s is None else poll_s)
        _shutdown(module)
        return EnergyMeter(f"{label}: {reason}")
    except Exception as exc:
        _shutdown(module)
        return EnergyMeter(f"NVML could not open cuda:{index}: {_err(exc)}")


# ---------------------------------------------------------------------------------------------------

_NO_COUNTER = {
    "mps": (
        "Apple GPUs: macOS exposes power only through powermetrics (root, sampled, not a counter); "
        "devicebench reads no energy counter on mps"
    ),
    "xpu": "Intel GPUs: devicebench has no reader for their energy counters yet",
    "rocm": "AMD GPUs: devicebench has no reader for their energy counters (amd-smi) yet",
}


def unsupported_reason(device_type: str) -> str:
    """Why a device type has no energy counter devicebench reads."""
    return _NO_COUNTER.get(device_type, f"no energy counter for device type {device_type!r}")


def open_energy_meter(
    device_type: str,
    index: int | None = None,
    *,
    root: str = "/",
    nvml: Any = None,
    poll_s: float | None = None,
) -> EnergyMeter:
    """The energy meter of a device: "cpu" (RAPL package + DRAM), "cuda" (NVML on NVIDIA GPUs).

    Never raises for a missing counter: the meter says `available=False` and why. `poll_s` overrides
    how often a background thread reads the counter (RAPL: to catch wraps; NVML power: the sample
    interval); 0 turns the thread off (tests).
    """
    if device_type == "cpu":
        found = discover_rapl(root)
        if not found.readable:
            return EnergyMeter(found.reason)
        try:
            return RaplMeter(found.zones, _RAPL_POLL_S if poll_s is None else poll_s)
        except (OSError, ValueError) as exc:
            return EnergyMeter(f"RAPL counters could not be read: {exc}")
    if device_type == "cuda":
        torch = sys.modules.get("torch")
        if torch is not None and getattr(torch.version, "hip", None):
            return EnergyMeter(unsupported_reason("rocm"))
        return _open_nvml(0 if index is None else int(index), nvml, poll_s)
    return EnergyMeter(unsupported_reason(device_type))


def probe_energy(root: str = "/") -> dict[str, Any]:
    """The CPU's RAPL counters for hwinfo: {"device", "source", "available", "domains", "skipped", "reason"}."""
    found = discover_rapl(root)
    return {
        "device": "cpu",
        "source": "rapl" if found.readable else "unavailable",
        "available": found.readable,
        "domains": found.domains,
        "skipped": found.skipped,
        "reason": found.reason,
    }


ENERGY_FIGURES = (
    "joules_per_step",
    "tokens_per_joule",
    "mean_watts",
    "idle_watts",
    "eval_joules",
    "timed_joules",
)


def check_energy(
    block: Any, tokens_per_iter: Any = None, fallback: PowerBand | None = None
) -> tuple[dict[str, float | None] | None, str | None]:
    """(figures, None) when a run's summary.energy holds figures from a real counter that pass the checks,
    else (None, why there are none). The checks: a counter source, positive finite joules per step, tokens
    per joule and mean power, the two consistent with the run's tokens per step, the mean power inside the
    band the run recorded (or `fallback` for files without one), joules never negative. An idle reading
    outside the band is dropped, not the figures."""
    if not isinstance(block, dict):
        return None, "the run recorded no energy block"
    source = block.get("source")
    reason = block.get("reason") if isinstance(block.get("reason"), str) and block.get("reason") else None
    if source not in COUNTER_SOURCES:
        if reason:
            return None, reason
        if source in (None, "", "unavailable"):
            return None, "no counter was recorded as the source"
        return (
            None,
            f"the source is {str(source)[:40]!r}, not a counter devicebench reads (never an estimate)",
        )
    raw = {k: block.get(k) for k in ENERGY_FIGURES}
    main = ("joules_per_step", "tokens_per_joule", "mean_watts")
    if all(raw[k] is None for k in main):
        return None, reason or "the counter recorded no figures for the timed steps"
    bad = [f"{k} {raw[k]!r}" for k in main if not is_positive(raw[k])]
    bad += [f"{k} {raw[k]!r}" for k in ("eval_joules", "timed_joules") if raw[k] is not None and not (
        isinstance(raw[k], (int, float)) and not isinstance(raw[k], bool) and 0 <= raw[k] < float("inf"))]  # fmt: skip
    if bad:
        return None, "run.json holds energy figures that are not positive numbers (" + ", ".join(bad) + ")"
    if is_positive(tokens_per_iter):
        product = float(raw["joules_per_step"]) * float(raw["tokens_per_joule"])  # type: ignore[arg-type]
        if abs(product / float(tokens_per_iter) - 1) > 0.01:
            return None, (
                f"run.json's joules per step x tokens per joule is {product:,.4g} tokens, not the run's "
                f"{float(tokens_per_iter):,.0f} tokens per step: edited or damaged figures"
            )
    band = _recorded_band(block.get("band")) or fallback
    if band is not None:
        why = band.check(float(raw["mean_watts"]))  # type: ignore[arg-type]
        if why:
            return None, why
    figures: dict[str, float | None] = {k: (float(v) if v is not None else None) for k, v in raw.items()}
    idle = raw["idle_watts"]
    if idle is not None and not (is_positive(idle) and (band is None or idle <= band.high_watts)):
        figures["idle_watts"] = None
    return figures, None


def _recorded_band(value: Any) -> PowerBand | None:
    if not isinstance(value, dict):
        return None
    low, high = value.get("low_watts"), value.get("high_watts")
    if not (is_positive(low) and is_positive(high) and low < high):
        return None
    return PowerBand(float(low), float(high), str(value.get("basis") or "recorded with the run"))

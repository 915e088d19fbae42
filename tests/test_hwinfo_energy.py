"""Energy counters: RAPL through a fake /sys/class/powercap (domains, skipping, wrap, permissions) and a
fake NVML (energy counter, power samples, neither); this VM's answer; hwinfo's listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import hwinfo.energy as energy
from hwinfo import snapshot
from hwinfo.energy import (
    EnergyUnavailable,
    NvmlPowerSampleMeter,
    discover_rapl,
    open_energy_meter,
    probe_energy,
)
from hwinfo.render import render_text

MAX = 262_143_328_850  # a real package max_energy_range_uj


def _zone(root: Path, dirname: str, name: str, uj: int | str, max_uj: int | str | None = MAX) -> Path:
    d = root / "sys/class/powercap" / dirname
    d.mkdir(parents=True, exist_ok=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{uj}\n")
    if max_uj is not None:
        (d / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return d


def _intel_laptop(root: Path) -> Path:
    """Client Intel: package with core/uncore/dram subzones, psys, and the MMIO copy of the package."""
    _zone(root, "intel-rapl:0", "package-0", 1_000_000)
    _zone(root, "intel-rapl:0:0", "core", 400_000)
    _zone(root, "intel-rapl:0:1", "uncore", 10_000)
    _zone(root, "intel-rapl:0:2", "dram", 50_000)
    _zone(root, "intel-rapl:1", "psys", 9_000_000)
    _zone(root, "intel-rapl-mmio:0", "package-0", 1_000_000)
    (root / "sys/class/powercap/intel-rapl").mkdir()  # the control-type directory itself
    return root


def _set(root: Path, dirname: str, uj: int) -> None:
    (root / "sys/class/powercap" / dirname / "energy_uj").write_text(f"{uj}\n")


def test_package_and_dram_are_summed_psys_core_and_mmio_skipped(tmp_path: Path) -> None:
    root = _intel_laptop(tmp_path)
    found = discover_rapl(str(root))
    assert [z.name for z in found.zones] == ["package-0", "package-0/dram"]
    skipped = " | ".join(found.skipped)
    for what in ("psys", "package-0/core", "package-0/uncore", "intel-rapl-mmio:0"):
        assert what in skipped
    meter = open_energy_meter("cpu", root=str(root), poll_s=0)
    assert (meter.available, meter.source, meter.reason) == (True, "rapl", None)
    assert meter.domains == ["package-0", "package-0/dram"]
    assert meter.read_joules() == 0.0
    _set(root, "intel-rapl:0", 3_500_000)  # +2.5 J
    _set(root, "intel-rapl:0:2", 550_000)  # +0.5 J
    _set(root, "intel-rapl:1", 99_000_000)  # psys: not counted
    _set(root, "intel-rapl:0:0", 3_000_000)  # core: inside the package, not counted twice
    assert meter.read_joules() == pytest.approx(3.0)
    meter.close()
    with pytest.raises(EnergyUnavailable, match="closed"):
        meter.read_joules()


def test_a_wrapped_counter_is_corrected(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", "package-0", MAX - 1_000)
    meter = open_energy_meter("cpu", root=str(tmp_path), poll_s=0)
    _set(tmp_path, "intel-rapl:0", 2_000)  # wrapped: 1000 uJ to the top, then 2000 from zero
    assert meter.read_joules() == pytest.approx(3_000 / 1e6)
    _set(tmp_path, "intel-rapl:0", 5_000)
    assert meter.read_joules() == pytest.approx(6_000 / 1e6)


def test_the_poller_sees_every_wrap(tmp_path: Path) -> None:
    """Read only at the ends, a counter that wrapped twice would lose a whole range; the poller's ticks see it.
    (The ticks are called here in order: a test must not depend on a thread's timing on a busy machine.)"""
    _zone(tmp_path, "intel-rapl:0", "package-0", 0, max_uj=1_000)
    meter = open_energy_meter("cpu", root=str(tmp_path), poll_s=0)
    try:
        for value in (600, 100, 700):  # 0 -> 600 -> (wrap) 100 -> 700
            _set(tmp_path, "intel-rapl:0", value)
            meter._update()  # what the poller thread does every poll_s
        assert meter.read_joules() == pytest.approx((600 + 500 + 600) / 1e6)
    finally:
        meter.close()


def test_the_poller_thread_ticks_and_stops(tmp_path: Path) -> None:
    import threading

    _zone(tmp_path, "intel-rapl:0", "package-0", 0, max_uj=1_000)
    meter = open_energy_meter("cpu", root=str(tmp_path), poll_s=0.01)
    ticked = threading.Event()
    real = meter._update

    def update() -> None:
        real()
        ticked.set()

    meter._poller._tick = update  # the callable the poller thread calls every poll_s
    try:
        assert ticked.wait(timeout=30), "the poller never ticked"
    finally:
        meter.close()
    assert meter._poller is None


def test_amd_package_only(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", "package-0", 10)
    _zone(tmp_path, "intel-rapl:0:0", "core", 5)
    assert probe_energy(str(tmp_path))["domains"] == ["package-0"]


def test_repeated_counters_are_counted_once(tmp_path: Path) -> None:
    # the same package counter exposed under two zones, and two dies of one package reading one counter
    _zone(tmp_path, "intel-rapl:0", "package-0", 10)
    _zone(tmp_path, "intel-rapl:1", "package-0", 10)
    _zone(tmp_path, "intel-rapl:2", "package-1-die-0", 777)
    _zone(tmp_path, "intel-rapl:3", "package-1-die-1", 777)
    found = discover_rapl(str(tmp_path))
    assert [z.name for z in found.zones] == ["package-0", "package-1-die-0"]
    assert any("intel-rapl:1" in s and "repeated" in s for s in found.skipped)
    assert any("intel-rapl:3" in s and "same counter" in s for s in found.skipped)


def test_real_per_die_counters_are_all_kept(tmp_path: Path) -> None:
    """Multi-die packages (Cascade Lake-AP) have a counter per die: distinct readings, all summed."""
    _zone(tmp_path, "intel-rapl:0", "package-0-die-0", 1_000)
    _zone(tmp_path, "intel-rapl:1", "package-0-die-1", 2_000)
    assert [z.name for z in discover_rapl(str(tmp_path)).zones] == ["package-0-die-0", "package-0-die-1"]


def test_root_only_counter_says_why_and_how_to_grant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _intel_laptop(tmp_path)
    real = energy._read_text

    def root_only(path: Path) -> str:  # what a non-root user gets since CVE-2020-8694
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(energy, "_read_text", root_only)
    meter = open_energy_meter("cpu", root=str(root))
    assert meter.available is False and meter.source == "unavailable"
    assert "/sys/class/powercap/intel-rapl:0/energy_uj" in meter.reason
    assert "CVE-2020-8694" in meter.reason and "chmod" in meter.reason
    with pytest.raises(EnergyUnavailable, match="CVE-2020-8694"):
        meter.read_joules()
    listed = probe_energy(str(root))
    assert listed["available"] is False and listed["domains"] == ["package-0", "package-0/dram"]


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (lambda r: None, "/sys/class/powercap does not exist"),
        (lambda r: (r / "sys/class/powercap").mkdir(parents=True), "no intel-rapl zones"),
        (lambda r: _zone(r, "intel-rapl:1", "psys", 5), "no RAPL package or DRAM counter"),
        (lambda r: _zone(r, "intel-rapl:0", "package-0", 5, max_uj=None), "max_energy_range_uj is missing"),
        (lambda r: _zone(r, "intel-rapl:0", "package-0", "garbage"), "cannot be read"),
        (lambda r: _zone(r, "intel-rapl:0", "package-0", 5, max_uj=0), "wrap cannot be corrected"),
    ],
)
def test_unavailable_says_exactly_why(tmp_path: Path, setup: Any, reason: str) -> None:
    setup(tmp_path)
    meter = open_energy_meter("cpu", root=str(tmp_path))
    assert meter.available is False and meter.domains == [] and reason in meter.reason


def test_this_vm_has_no_counter_and_says_why() -> None:
    if Path("/sys/class/powercap").exists():
        pytest.skip("this machine has powercap")
    meter = open_energy_meter("cpu")
    assert meter.available is False
    assert "/sys/class/powercap does not exist" in meter.reason and "VM" in meter.reason


# --- NVML ---------------------------------------------------------------------------------------------


class FakeNVML:
    """pynvml's energy and power calls for GPUs by NVML index; values advance as the test sets them."""

    def __init__(
        self, names: list[str], energy_mj: int | None = 1_000_000, power_mw: int | None = 150_000
    ) -> None:
        self.names = names
        self.energy_mj = energy_mj
        self.power_mw = power_mw
        self.init_error: Exception | None = None
        self.shutdowns = 0
        self.by_uuid: dict[str, int] = {}
        self.mig: bool | None = None

    def nvmlInit(self) -> None:
        if self.init_error:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        if i >= len(self.names):
            raise RuntimeError("Invalid Argument")
        return i

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        return self.by_uuid[uuid]

    def nvmlDeviceGetName(self, h: int) -> str:
        return self.names[h]

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:
        if self.energy_mj is None:
            raise RuntimeError("Not Supported")
        return self.energy_mj + h

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        if self.power_mw is None:
            raise RuntimeError("Not Supported")
        return self.power_mw

    def nvmlDeviceGetMigMode(self, h: int) -> list[int]:
        if self.mig is None:
            raise RuntimeError("Not Supported")  # NVMLError_NotSupported: a GPU without MIG
        return [int(self.mig), int(self.mig)]


def test_nvml_energy_counter() -> None:
    nvml = FakeNVML(["NVIDIA H100 80GB HBM3"])
    meter = open_energy_meter("cuda", 0, nvml=nvml)
    assert (meter.available, meter.source) == (True, "nvml_energy")
    assert "H100" in meter.domains[0] and "nvmlDeviceGetTotalEnergyConsumption" in meter.detail
    nvml.energy_mj += 12_345
    assert meter.read_joules() == pytest.approx(12.345)
    nvml.energy_mj = None
    with pytest.raises(EnergyUnavailable, match="stopped answering"):
        meter.read_joules()
    meter.close()
    assert nvml.shutdowns == 1


def nvml_energy(nvml: FakeNVML) -> dict:
    from hwinfo.nvml import _energy

    return _energy(nvml, 0)


def test_a_mig_slice_gets_no_whole_gpu_energy() -> None:
    """CUDA on a MIG slice maps (by PCI bus) to the whole GPU, whose counter every MIG instance shares."""
    nvml = FakeNVML(["NVIDIA H100 80GB HBM3"])
    nvml.mig = True
    meter = open_energy_meter("cuda", 0, nvml=nvml)
    assert meter.available is False and "MIG" in meter.reason and "whole GPU" in meter.reason
    assert nvml.shutdowns == 1
    assert nvml_energy(nvml)["source"] == "unavailable"  # and hwinfo's listing says the same
    nvml.mig = False  # MIG-capable, MIG off: the counter is this GPU's
    assert open_energy_meter("cuda", 0, nvml=nvml).source == "nvml_energy"
    assert nvml_energy(nvml)["source"] == "nvml_energy"


def test_nvml_power_samples_when_no_counter() -> None:
    nvml = FakeNVML(["Tesla P100-PCIE-16GB"], energy_mj=None)
    meter = open_energy_meter("cuda", 0, nvml=nvml, poll_s=0)
    assert (
        meter.source == "nvml_power_samples"
        and "integrated" in meter.detail
        and "approximation" in meter.detail
    )
    meter.close()
    times = iter([0.0, 2.0, 3.0])
    sampled = NvmlPowerSampleMeter(nvml, 0, "GPU 0", interval_s=0, clock=lambda: next(times))
    nvml.power_mw = 200_000  # 150 W at t=0, 200 W at t=2: trapezoid 2 s x 175 W
    assert sampled.read_joules() == pytest.approx(350.0)
    nvml.power_mw = 100_000  # then 1 s x 150 W
    assert sampled.read_joules() == pytest.approx(500.0)
    sampled.close()


def test_nvml_neither_counter_nor_power() -> None:
    meter = open_energy_meter("cuda", 0, nvml=FakeNVML(["Old GPU"], energy_mj=None, power_mw=None))
    assert meter.available is False
    assert "nvmlDeviceGetTotalEnergyConsumption" in meter.reason and "nvmlDeviceGetPowerUsage" in meter.reason


def test_nvml_missing_or_failing() -> None:
    nvml = FakeNVML(["x"])
    nvml.init_error = RuntimeError("Driver Not Loaded")
    meter = open_energy_meter("cuda", 0, nvml=nvml)
    assert (
        meter.available is False
        and "NVML not available" in meter.reason
        and "Driver Not Loaded" in meter.reason
    )
    assert "cuda:5" in open_energy_meter("cuda", 5, nvml=FakeNVML(["a"])).reason


def test_cuda_visible_devices_maps_cuda_index_to_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = FakeNVML(["GPU A", "GPU B", "GPU C"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    meter = open_energy_meter("cuda", 0, nvml=nvml)
    assert "GPU C" in meter.domains[0] and "CUDA_VISIBLE_DEVICES" in meter.domains[0]
    nvml.by_uuid["GPU-abc"] = 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-abc")
    assert "GPU B" in open_energy_meter("cuda", 0, nvml=nvml).domains[0]


@pytest.mark.parametrize(("device", "words"), [("mps", "powermetrics"), ("xpu", "Intel"), ("tpu", "'tpu'")])
def test_other_devices_are_unavailable_with_the_reason(device: str, words: str) -> None:
    meter = open_energy_meter(device)
    assert meter.available is False and words in meter.reason
    with pytest.raises(EnergyUnavailable):
        meter.read_joules()


# --- hwinfo lists the counters -------------------------------------------------------------------------


def test_hwinfo_lists_counters_and_readability(tmp_path: Path) -> None:
    root = _intel_laptop(tmp_path)
    (root / "proc").mkdir()
    (root / "proc/cpuinfo").write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Test CPU\n")
    snap = snapshot(root=str(root), use_torch=False, nvml_module=None)
    (cpu,) = snap["energy"]["counters"]
    assert cpu == {
        "device": "cpu",
        "source": "rapl",
        "available": True,
        "domains": ["package-0", "package-0/dram"],
        "skipped": cpu["skipped"],
        "reason": None,
    }
    text = render_text(snap)
    assert "Energy counters" in text and "cpu: rapl (package-0, package-0/dram), readable" in text
    bare = snapshot(root=str(tmp_path / "nothing"), use_torch=False, nvml_module=None)
    assert "cpu: unavailable: no RAPL counters" in render_text(bare)


# --- plausibility: a broken counter is not a wrap; the power band of a device -----------------------------


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _rapl_meter(root: Path, clock: _Clock) -> energy.RaplMeter:
    found = discover_rapl(str(root))
    return energy.RaplMeter(found.zones, poll_s=0, clock=clock)


def test_a_counter_running_backwards_is_broken_not_a_wrap(tmp_path: Path) -> None:
    """The defect: every step backwards was taken for a wrap, adding a whole 262 kJ range each time."""
    _zone(tmp_path, "intel-rapl:0", "package-0", 5_000_000)
    clock = _Clock()
    meter = _rapl_meter(tmp_path, clock)
    clock.t = 1.0
    _set(tmp_path, "intel-rapl:0", 4_000_000)  # as a wrap: 262 kJ in 1 s, beyond any ceiling
    with pytest.raises(EnergyUnavailable, match="ran backwards.*broken"):
        meter.read_joules()
    clock.t = 2.0
    _set(tmp_path, "intel-rapl:0", 6_000_000)  # forward again: still broken, never trusted again
    with pytest.raises(EnergyUnavailable, match="broken"):
        meter.read_joules()


def test_a_second_step_backwards_sooner_than_a_full_range_is_broken(tmp_path: Path) -> None:
    d = _zone(tmp_path, "intel-rapl:0", "package-0", 90_000_000, max_uj=100_000_000)  # a 100 J range
    (d / "constraint_0_power_limit_uw").write_text("10000000\n")  # 10 W: a 20 W ceiling, 5 s per range
    clock = _Clock()
    meter = _rapl_meter(tmp_path, clock)
    assert meter.band.high_watts == 20.0 and "10 W power limit" in meter.band.basis
    for t, uj in ((1.0, 5_000_000), (2.0, 95_000_000)):  # a wrap (15 J in 1 s), then forward
        clock.t = t
        _set(tmp_path, "intel-rapl:0", uj)
        meter.read_joules()
    assert meter.read_joules() == pytest.approx(105.0)
    clock.t = 3.0
    _set(tmp_path, "intel-rapl:0", 3_000_000)  # 8 J in 1 s would fit, but 2 s after the last wrap
    with pytest.raises(EnergyUnavailable, match="backwards twice"):
        meter.read_joules()


def test_the_band_comes_from_the_power_limits_or_the_cpu_count(tmp_path: Path) -> None:
    d = _zone(tmp_path, "intel-rapl:0", "package-0", 0)
    (d / "constraint_0_power_limit_uw").write_text("15000000\n")  # PL1 15 W
    (d / "constraint_1_power_limit_uw").write_text("28000000\n")  # PL2 28 W: the highest is kept
    (d / "constraint_2_power_limit_uw").write_text("junk\n")
    zones = discover_rapl(str(tmp_path)).zones
    assert energy.rapl_band(zones).high_watts == energy.PLAUSIBLE_MULTIPLE * 28
    (d / "constraint_0_power_limit_uw").unlink()
    (d / "constraint_1_power_limit_uw").unlink()
    band = energy.rapl_band(discover_rapl(str(tmp_path)).zones, logical_cpus=2)
    assert band.high_watts == energy.PLAUSIBLE_MULTIPLE * 2 * energy.FALLBACK_CPU_WATTS_PER_LOGICAL_CPU
    assert "no RAPL power limit" in band.basis
    assert "ceiling" in band.check(2531.0) and band.check(30.0) is None  # 2,531 W on a 2-CPU machine
    assert "floor" in band.check(0.01) and "not a positive" in band.check(-3.0)


def test_nvml_band_from_the_enforced_power_limit() -> None:
    nvml = FakeNVML(["NVIDIA H100 80GB HBM3"])
    assert open_energy_meter("cuda", 0, nvml=nvml).band.basis.endswith("no GPU power limit was readable")
    nvml.nvmlDeviceGetEnforcedPowerLimit = lambda h: 700_000  # type: ignore[attr-defined]
    meter = open_energy_meter("cuda", 0, nvml=nvml)
    assert meter.band.high_watts == energy.PLAUSIBLE_MULTIPLE * 700


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ({"source": "unavailable", "reason": None}, "no counter was recorded"),
        ({"source": None}, "no counter was recorded"),
        ({"source": "tdp_estimate"}, "not a counter"),
        ({"source": "rapl", "joules_per_step": -3.0, "tokens_per_joule": -1.0, "mean_watts": 5.0}, "not positive"),
        ({"source": "rapl", "joules_per_step": "2", "tokens_per_joule": 384.0, "mean_watts": 5.0}, "not positive"),
        ({"source": "rapl", "joules_per_step": 2.0, "tokens_per_joule": 999.0, "mean_watts": 5.0}, "edited"),
        ({"source": "rapl", "joules_per_step": 2.0, "tokens_per_joule": 384.0, "mean_watts": 526_043.0}, "ceiling"),
        ({"source": "rapl", "joules_per_step": 2.0, "tokens_per_joule": 384.0, "mean_watts": 40.0,
          "eval_joules": -1.0}, "not positive"),
        ({"source": "rapl", "reason": "the counter did not advance"}, "did not advance"),
    ],
)  # fmt: skip
def test_check_energy_refuses_what_is_not_a_measurement(block: dict, words: str) -> None:
    figures, why = energy.check_energy(block, 768, energy.cpu_band(None, 2))
    assert figures is None and words in why


def test_check_energy_keeps_real_figures_and_drops_an_implausible_idle() -> None:
    block = {"source": "rapl", "joules_per_step": 2.0, "tokens_per_joule": 384.0, "mean_watts": 40.0,
             "idle_watts": 9e9, "eval_joules": 0.0, "timed_joules": 200.0}  # fmt: skip
    figures, why = energy.check_energy(block, 768, energy.cpu_band(None, 2))
    assert why is None and figures["mean_watts"] == 40.0 and figures["idle_watts"] is None


def test_a_band_for_older_runs_comes_from_the_hwinfo_snapshot() -> None:
    hw = {"cpu": {"logical_cores": 4}, "gpus": [{"name": "A", "power_limit_w": 300.0}, {"name": "B"}]}
    assert energy.band_for_device("cpu", hw).high_watts == energy.PLAUSIBLE_MULTIPLE * 4 * 25
    assert energy.band_for_device("cuda", hw).high_watts == energy.PLAUSIBLE_MULTIPLE * 300
    assert (
        energy.band_for_device("cuda", {}).high_watts == energy.PLAUSIBLE_MULTIPLE * energy.FALLBACK_GPU_WATTS
    )

"""GPUs on the PCI bus, from {root}/sys/bus/pci/devices (display controllers, class 0x03xxxx).

The vendor comes only from the PCI vendor id, never from any text: an Intel iGPU is "Intel" whatever
pci.ids, the subsystem vendor or a driver string says.

Integrated or discrete (PCI has no such bit), from the strongest evidence first, the reason kept:
- the device id's family: Intel Arc/DG1/DG2/Battlemage and AMD's Radeon/Instinct id ranges are
  discrete; AMD APU graphics ids (KNOWN_AMD_APU_IDS, the 0x13xx/0x15xx/0x16xx/0x98xx ranges) integrated;
- amdgpu's mem_info_vram_total: more than 1 GiB of dedicated memory is a card, an APU carve-out is less;
- a prefetchable BAR of 2 GiB or more (a card's VRAM aperture, e.g. resizable BAR or a datacenter GPU);
- Intel on bus 00 is the iGPU; anything else by Intel, NVIDIA, or AMD without evidence: discrete.
boot_vga alone decides nothing: a card passed through to a VM (vfio-pci, no amdgpu) is often the boot VGA.

BMC and virtual display adapters (ASPEED, Matrox G200 on servers, QEMU/virtio/VMware/Hyper-V/EC2
framebuffers) are not GPUs: NON_GPU_DISPLAYS lists them and probe_pci leaves them out.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hwinfo.cpu import _read

VENDORS: dict[str, str] = {"0x8086": "Intel", "0x10de": "NVIDIA", "0x1002": "AMD"}

# Graphics device ids of AMD APUs (Raven, Picasso, Renoir, Cezanne, Lucienne, Barcelo, Rembrandt,
# Raphael, Granite Ridge, Phoenix, Hawk Point, Mendocino, Van Gogh, Strix Point, Strix Halo, Krackan).
KNOWN_AMD_APU_IDS: frozenset[str] = frozenset(
    {
        "0x15dd",
        "0x15d8",
        "0x1636",
        "0x1638",
        "0x164c",
        "0x15e7",
        "0x1681",
        "0x164e",
        "0x13c0",
        "0x15bf",
        "0x15c8",
        "0x1506",
        "0x163f",
        "0x150e",
        "0x1586",
        "0x1114",
        "0x98e4",
        "0x9874",
    }
)

# Display controllers that are not compute GPUs: (vendor id, device id or None for all) -> what it is.
NON_GPU_DISPLAYS: dict[tuple[str, str | None], str] = {
    ("0x1a03", "0x2000"): "ASPEED BMC VGA",
    ("0x102b", None): "Matrox G200 (server BMC VGA)",
    ("0x19e5", "0x1711"): "Huawei iBMC VGA",
    ("0x1234", "0x1111"): "QEMU standard VGA",
    ("0x1af4", "0x1050"): "virtio-gpu",
    ("0x1b36", "0x0100"): "QXL paravirtual display",
    ("0x15ad", "0x0405"): "VMware SVGA II",
    ("0x1013", "0x00b8"): "Cirrus GD 5446 (emulated)",
    ("0x1414", "0x5353"): "Hyper-V synthetic display",
    ("0x80ee", "0xbeef"): "VirtualBox display",
    ("0x1d0f", "0x1111"): "Amazon EC2 VGA",
}
_AMD_APU_PREFIXES = ("0x13", "0x15", "0x16", "0x98")
_AMD_DGPU_PREFIXES = ("0x66", "0x67", "0x68", "0x69", "0x6f", "0x73", "0x74", "0x75")
_INTEL_DGPU_PREFIXES = ("0x56", "0xe2", "0x49")  # DG2/Alchemist, Battlemage, DG1/SG1


def non_gpu_display(vendor_id: str, device_id: str | None) -> str | None:
    """What a BMC or virtual display adapter is, else None (a GPU, or unknown)."""
    return NON_GPU_DISPLAYS.get((vendor_id, device_id)) or NON_GPU_DISPLAYS.get((vendor_id, None))


PCI_IDS_PATHS: tuple[str, ...] = ("usr/share/misc/pci.ids", "usr/share/hwdata/pci.ids", "usr/share/pci.ids")


def _hex_id(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return f"0x{int(text, 16):04x}"
    except ValueError:
        return None


def find_pci_ids(root: str = "/") -> Path | None:
    """The system's pci.ids database under root, if any."""
    for rel in PCI_IDS_PATHS:
        path = Path(root, rel)
        if path.is_file():
            return path
    return None


def pci_ids_names(path: Path, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str | None]]:
    """Names for (vendor_id, device_id) pairs from a pci.ids file: {(v, d): (vendor name, device name)}."""
    want_vendors = {v[2:] for v, _ in wanted}
    found: dict[tuple[str, str], tuple[str, str | None]] = {}
    vendor_hex: str | None = None
    vendor_name = ""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip() or line.startswith("#"):
                    continue
                if line.startswith("C "):  # device classes follow the vendor list
                    break
                if not line.startswith("\t"):
                    vendor_hex, _, name = line.strip().partition(" ")
                    vendor_hex = vendor_hex.lower()
                    vendor_name = name.strip()
                    if vendor_hex in want_vendors:
                        for v, d in wanted:
                            if v[2:] == vendor_hex:
                                found.setdefault((v, d), (vendor_name, None))
                    continue
                if line.startswith("\t\t") or vendor_hex not in want_vendors:
                    continue
                dev_hex, _, name = line.strip().partition(" ")
                key = (f"0x{vendor_hex}", f"0x{dev_hex.lower()}")
                if key in wanted:
                    found[key] = (vendor_name, name.strip())
    except OSError:
        return {}
    return found


def classify(
    vendor_id: str,
    device_id: str | None,
    bus: str,
    *,
    vram_bytes: int | None = None,
    largest_bar_bytes: int | None = None,
) -> tuple[bool, str]:
    """(integrated, why) for a display controller; see the module docstring for the order of evidence."""
    dev = device_id or ""
    if vendor_id == "0x1002":
        if dev in KNOWN_AMD_APU_IDS or dev.startswith(_AMD_APU_PREFIXES):
            return True, f"AMD APU graphics device id {dev}"
        if dev.startswith(_AMD_DGPU_PREFIXES):
            return False, f"AMD Radeon/Instinct card device id {dev}"
    if vendor_id == "0x8086" and dev.startswith(_INTEL_DGPU_PREFIXES):
        return False, f"Intel discrete (Arc/DG1) device id {dev}"
    if vram_bytes is not None:
        if vram_bytes > 1 << 30:
            return False, f"{vram_bytes / 2**30:.0f} GiB of dedicated memory (mem_info_vram_total)"
        if vendor_id == "0x1002":
            return True, "at most 1 GiB of VRAM: an APU carve-out"
    if largest_bar_bytes is not None and largest_bar_bytes >= 2 << 30:
        return (
            False,
            f"a {largest_bar_bytes / 2**30:.0f} GiB memory BAR (a card's VRAM aperture; an iGPU maps less)",
        )
    if vendor_id == "0x8086":
        return (
            (True, "Intel graphics on bus 00") if bus == "00" else (False, "Intel graphics behind a bridge")
        )
    if vendor_id == "0x1002" and bus == "00":
        return True, "AMD graphics on bus 00"
    return False, "no sign of an integrated GPU (device id, memory or bus)"


def _vram_bytes(dev_dir: Path) -> int | None:
    text = _read(dev_dir / "mem_info_vram_total")
    return int(text) if text and text.isdigit() else None


def _largest_bar(dev_dir: Path) -> int | None:
    """The largest memory BAR from sysfs `resource` ("start end flags" per line, hex)."""
    sizes = []
    for line in (_read(dev_dir / "resource") or "").splitlines():
        parts = line.split()
        try:
            start, end = int(parts[0], 16), int(parts[1], 16)
        except (IndexError, ValueError):
            continue
        if end > start:
            sizes.append(end - start + 1)
    return max(sizes) if sizes else None


def _driver(dev_dir: Path) -> str | None:
    link = dev_dir / "driver"
    try:
        return link.resolve().name if link.exists() else None
    except OSError:
        return None


def gpu_record(
    address: str,
    vendor_id: str,
    device_id: str | None,
    cls: str,
    *,
    boot_vga: bool = False,
    subsystem_vendor_id: str | None = None,
    driver: str | None = None,
    vram_bytes: int | None = None,
    largest_bar_bytes: int | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """One entry of the snapshot's "gpus" list (from sysfs or from lspci text)."""
    parts = address.split(":")
    bus = parts[-2].lower() if len(parts) >= 2 else ""
    integrated, why = classify(
        vendor_id, device_id, bus, vram_bytes=vram_bytes, largest_bar_bytes=largest_bar_bytes
    )
    return {
        "pci_address": address,
        "vendor_id": vendor_id,
        "vendor": VENDORS.get(vendor_id, vendor_id),
        "device_id": device_id,
        "subsystem_vendor_id": subsystem_vendor_id,
        "class": cls,
        "boot_vga": boot_vga,
        "name": name,
        "integrated": integrated,
        "integrated_reason": why,
        "driver": driver,
        "nvml": None,
    }


def probe_pci(root: str = "/") -> list[dict[str, Any]]:
    """GPUs on the PCI bus, in address order (BMC and virtual display adapters left out)."""
    return probe_display(root)[0]


def probe_display(root: str = "/") -> tuple[list[dict[str, Any]], list[str]]:
    """(GPUs, one line per display adapter that is not a GPU) from {root}/sys/bus/pci/devices."""
    devices_dir = Path(root, "sys/bus/pci/devices")
    if not devices_dir.is_dir():
        return [], []
    gpus: list[dict[str, Any]] = []
    skipped: list[str] = []
    for dev_dir in sorted(devices_dir.iterdir()):
        cls = _read(dev_dir / "class") or ""
        if not cls.lower().startswith("0x03"):
            continue
        vendor_id = _hex_id(_read(dev_dir / "vendor")) or "unknown"
        device_id = _hex_id(_read(dev_dir / "device"))
        what = non_gpu_display(vendor_id, device_id)
        if what:
            skipped.append(
                f"{what} at {dev_dir.name} ({vendor_id[2:]}:{(device_id or '????')[2:]}) is a display adapter, not a GPU"
            )
            continue
        gpus.append(
            gpu_record(
                dev_dir.name,
                vendor_id,
                device_id,
                cls.lower(),
                boot_vga=_read(dev_dir / "boot_vga") == "1",
                subsystem_vendor_id=_hex_id(_read(dev_dir / "subsystem_vendor")),
                driver=_driver(dev_dir),
                vram_bytes=_vram_bytes(dev_dir),
                largest_bar_bytes=_largest_bar(dev_dir),
            )
        )
    ids_path = find_pci_ids(root)
    if ids_path and gpus:
        names = pci_ids_names(ids_path, {(g["vendor_id"], g["device_id"]) for g in gpus if g["device_id"]})
        for g in gpus:
            _vendor_name, device_name = names.get((g["vendor_id"], g["device_id"]), ("", None))
            g["name"] = device_name
    return gpus, skipped


_LSPCI_LINE = re.compile(
    r"^(?:IOMMU group \d+\s+)?(?P<addr>(?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+"
    r"(?P<cls_name>[^\[]*?)\s*\[(?P<cls>[0-9a-fA-F]{4})\]:\s*(?P<name>.*?)\s*"
    r"\[(?P<vendor>[0-9a-fA-F]{4}):(?P<device>[0-9a-fA-F]{4})\]"
)
# A display controller in plain `lspci` (no -nn): no vendor or device id to go on.
_LSPCI_PLAIN_DISPLAY = re.compile(
    r"^(?P<addr>(?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+"
    r"(?:VGA compatible|XGA compatible|3D|Display) controller:\s*(?P<name>.*)$"
)
_LSPCI_REGION = re.compile(r"^(?:Region \d+: )?Memory at .*\[size=(\d+)([KMGT]?)\]")  # -vv and -v


def parse_lspci(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(GPUs, skipped display adapters) from `lspci -nn` text (one line per function), with the
    "Kernel driver in use" and "Region" lines of `lspci -nnk` / `-vvnn` when present."""
    gpus: list[dict[str, Any]] = []
    skipped: list[str] = []
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        m = _LSPCI_LINE.match(line)
        if m:
            current = None
            if not m.group("cls").startswith("03"):
                continue
            vendor_id, device_id = f"0x{m.group('vendor').lower()}", f"0x{m.group('device').lower()}"
            addr = m.group("addr").lower()
            addr = addr if addr.count(":") == 2 else f"0000:{addr}"
            what = non_gpu_display(vendor_id, device_id)
            if what:
                skipped.append(
                    f"{what} at {addr} ({vendor_id[2:]}:{device_id[2:]}) is a display adapter, not a GPU"
                )
                continue
            current = {"addr": addr, "vendor": vendor_id, "device": device_id, "cls": f"0x{m.group('cls').lower()}00",
                       "name": m.group("name"), "driver": None, "bar": None}  # fmt: skip
            gpus.append(current)
            continue
        plain = _LSPCI_PLAIN_DISPLAY.match(line)
        if plain:
            current = None
            skipped.append(
                f"{plain.group('name')} at {plain.group('addr')}: a display controller without PCI ids (plain "
                "lspci), so its vendor and kind are unknown; run lspci -nn"
            )
            continue
        if current is None:
            continue
        if line.startswith("Kernel driver in use:"):
            current["driver"] = line.partition(":")[2].strip()
        r = _LSPCI_REGION.search(line)
        if r:
            size = int(r.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[r.group(2)]
            current["bar"] = max(current["bar"] or 0, size)
    records = [
        gpu_record(
            g["addr"],
            g["vendor"],
            g["device"],
            g["cls"],
            driver=g["driver"],
            largest_bar_bytes=g["bar"],
            name=g["name"],
        )  # fmt: skip
        for g in gpus
    ]
    return records, skipped

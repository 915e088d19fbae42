"""GPUs on the PCI bus, from {root}/sys/bus/pci/devices (display controllers, class 0x03xxxx).

The vendor comes only from the PCI vendor id, never from any text: an Intel iGPU is "Intel" whatever
pci.ids, the subsystem vendor or a driver string says.

Integrated or discrete (a heuristic; PCI has no such bit):
- Intel (0x8086) on bus 00: integrated (Arc/discrete Intel cards sit behind a bridge, on another bus).
- AMD (0x1002): integrated when the device id is a known APU graphics id (KNOWN_AMD_APU_IDS), when it
  sits on bus 00, or when it is the boot VGA device (boot_vga = 1) and has no dedicated memory
  (amdgpu's mem_info_vram_total absent or at most 1 GiB, the usual APU carve-out).
- Everything else (NVIDIA, virtual and BMC display devices): discrete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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

PCI_IDS_PATHS: tuple[str, ...] = ("usr/share/misc/pci.ids", "usr/share/hwdata/pci.ids", "usr/share/pci.ids")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


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


def _integrated(vendor_id: str, device_id: str | None, bus: str, dev_dir: Path) -> bool:
    if vendor_id == "0x8086":
        return bus == "00"
    if vendor_id == "0x1002":
        if device_id in KNOWN_AMD_APU_IDS or bus == "00":
            return True
        vram = _read(dev_dir / "mem_info_vram_total")
        no_vram = vram is None or (vram.isdigit() and int(vram) <= 1 << 30)
        return _read(dev_dir / "boot_vga") == "1" and no_vram
    return False


def probe_pci(root: str = "/") -> list[dict[str, Any]]:
    """Display controllers on the PCI bus, in address order."""
    devices_dir = Path(root, "sys/bus/pci/devices")
    if not devices_dir.is_dir():
        return []
    gpus: list[dict[str, Any]] = []
    for dev_dir in sorted(devices_dir.iterdir()):
        cls = _read(dev_dir / "class") or ""
        if not cls.lower().startswith("0x03"):
            continue
        vendor_id = _hex_id(_read(dev_dir / "vendor")) or "unknown"
        device_id = _hex_id(_read(dev_dir / "device"))
        address = dev_dir.name
        parts = address.split(":")
        bus = parts[-2].lower() if len(parts) >= 2 else ""
        gpus.append(
            {
                "pci_address": address,
                "vendor_id": vendor_id,
                "vendor": VENDORS.get(vendor_id, vendor_id),
                "device_id": device_id,
                "subsystem_vendor_id": _hex_id(_read(dev_dir / "subsystem_vendor")),
                "class": cls.lower(),
                "boot_vga": _read(dev_dir / "boot_vga") == "1",
                "name": None,
                "integrated": _integrated(vendor_id, device_id, bus, dev_dir),
                "nvml": None,
            }
        )
    ids_path = find_pci_ids(root)
    if ids_path and gpus:
        names = pci_ids_names(ids_path, {(g["vendor_id"], g["device_id"]) for g in gpus if g["device_id"]})
        for g in gpus:
            _vendor_name, device_name = names.get((g["vendor_id"], g["device_id"]), ("", None))
            g["name"] = device_name
    return gpus

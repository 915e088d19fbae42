"""The process-wide levers of PyTorch's CPU tuning guide (allocator by LD_PRELOAD, OpenMP affinity): what they
are and whether this machine has them. Below both the plan (which variants can run) and the child process
that runs them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# allocator -> (the library names ldconfig lists, how to install it)
ALLOCATORS = {
    "jemalloc": (("libjemalloc.so",), "apt install libjemalloc2 (Debian/Ubuntu), dnf install jemalloc (Fedora), "
                 "or conda install -c conda-forge jemalloc"),
    "tcmalloc": (("libtcmalloc.so", "libtcmalloc_minimal.so"), "apt install libgoogle-perftools4 (Debian/Ubuntu), "
                 "dnf install gperftools-libs (Fedora), or conda install -c conda-forge gperftools"),
}  # fmt: skip
# Thread affinity, set when a process starts: the OpenMP 4.0 affinity the PyTorch CPU tuning guide sets (each
# thread bound close to the master, one per core); Intel's guide's KMP_AFFINITY (read by Intel's OpenMP only);
# numactl binding the process's CPUs and memory to NUMA node 0 (a launcher, not an environment).
OMP_AFFINITY = {
    "close-cores": {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"},
    "kmp-compact": {"KMP_AFFINITY": "granularity=fine,compact,1,0", "KMP_BLOCKTIME": "1"},
    "numa-node0": {},
}
LAUNCHERS = {"numa-node0": ("numactl", "--cpunodebind=0", "--membind=0")}
# the OpenMP runtime a process has mapped, by its library's name
OPENMP_RUNTIMES = (("libiomp5", "Intel OpenMP (libiomp5)"), ("libgomp", "GNU OpenMP (libgomp)"),
                   ("libomp", "LLVM OpenMP (libomp)"))  # fmt: skip


def openmp_runtime(maps_text: str | None = None) -> str | None:
    """The OpenMP runtime this process has mapped (/proc/self/maps, or maps_text), in words; None when none is
    (or the maps cannot be read: not Linux)."""
    if maps_text is None:
        try:
            maps_text = Path("/proc/self/maps").read_text()
        except OSError:
            return None
    names = {Path(line.split()[-1]).name for line in maps_text.splitlines() if "/" in line}
    for lib, words in OPENMP_RUNTIMES:
        if any(n.startswith(lib + ".so") or n.startswith(lib + "-") for n in names):
            return words
    return None


def kmp_affinity_unavailable(runtime: str | None) -> str | None:
    """Why KMP_AFFINITY cannot be tried here, or None (Intel's OpenMP reads it; GNU and LLVM OpenMP differ)."""
    if runtime is not None and runtime.startswith("Intel"):
        return None
    uses = f"PyTorch here uses {runtime}" if runtime else "no OpenMP runtime was found in this process"
    return (f"KMP_AFFINITY is read by Intel's OpenMP (libiomp5) only: {uses}, which ignores it (the omp_affinity "
            "tip sets the standard OMP_PROC_BIND and OMP_PLACES it reads)")  # fmt: skip


def numa_nodes(root: str = "/sys/devices/system/node") -> int | None:
    """How many NUMA nodes Linux lists (None when it lists none: not Linux)."""
    try:
        return sum(1 for p in Path(root).iterdir() if re.fullmatch(r"node\d+", p.name)) or None
    except OSError:
        return None


def numactl_unavailable(path: str | None, nodes: int | None) -> str | None:
    """Why `numactl --cpunodebind=0 --membind=0` cannot be tried here (or would change nothing), or None."""
    if not nodes or nodes < 2:
        return (f"this machine has {'one NUMA node' if nodes == 1 else 'no NUMA nodes listed'}: binding to node 0 "
                "is binding to every CPU and all memory, which changes nothing")  # fmt: skip
    if path is None:
        return (f"numactl is not installed (this machine has {nodes} NUMA nodes): install it with apt install "
                "numactl (Debian/Ubuntu) or dnf install numactl (Fedora)")  # fmt: skip
    return None


def find_library(names: tuple[str, ...], ldconfig_text: str | None = None) -> str | None:
    """The path of the first library named (libjemalloc.so, ...) that `ldconfig -p` lists, else one in the
    active Python or conda environment's lib/; None when there is none."""
    text = ldconfig_text
    if text is None:
        ldconfig = shutil.which("ldconfig") or ("/sbin/ldconfig" if Path("/sbin/ldconfig").exists() else None)
        text = ""
        if ldconfig:
            try:
                text = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                text = ""
    for name in names:
        found = []
        for line in text.splitlines():
            m = re.match(r"\s*(\S+)\s.*=>\s*(\S+)", line)
            if m and m.group(1).startswith(name):
                found.append((("64" not in line), m.group(2)))  # a 64-bit build first
        if found:
            return sorted(found)[0][1]
    for prefix in {sys.prefix, os.environ.get("CONDA_PREFIX") or sys.prefix}:
        for name in names:
            found = sorted(Path(prefix, "lib").glob(name + "*"))
            if found:
                return str(found[0])
    return None


def allocator_unavailable(name: str, path: str | None) -> str | None:
    """Why the allocator cannot be tried here (with how to install it), or None."""
    if sys.platform != "linux":
        return f"LD_PRELOAD of {name} is a Linux mechanism; this is {sys.platform}"
    if path is None:
        names, install = ALLOCATORS[name]
        return f"{name} is not installed (`ldconfig -p` lists no {' or '.join(names)}): install it with {install}"
    return None

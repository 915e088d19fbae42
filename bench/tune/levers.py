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
# the OpenMP 4.0 affinity the PyTorch CPU tuning guide sets: each thread bound close to the master, one per core
OMP_AFFINITY = {"close-cores": {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}}


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

"""reports.scaling on constructed results directories: several GPUs and nodes, a straggler, ranks sharing a CPU.

reports.synthetic writes each run; the data-parallel fields of run.json (as bench/runner.py writes them under
torchrun) are added on top. The figures each finding must quote are recomputed here from the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reports.diagnosis import diagnose
from reports.load import load_results
from tests import fixtures as synthetic

SHORT = {"max_iters": 200, "lr_decay_iters": 200, "eval_interval": 50}
GPU = {"device": "cuda", "device_name": "Synthetic GPU", "threads": None, "train": SHORT}


def kinds(findings, kind):
    return [f for f in findings if f.kind == kind]


def ddp_run(
    root: Path, run_id: str, *, world_size: int, nproc_per_node: int | None = None, backend: str = "nccl",
    share: float = 0.1, straggler: float = 1.0, slowest: int = 0, identical: bool = True, measured: bool = True,
    **kw,
) -> dict:  # fmt: skip
    """A data-parallel run: synthetic.write_run, then the fields the runner adds under torchrun."""
    rd = synthetic.write_run(root, run_id, **kw)
    meta = json.loads((rd / "run.json").read_text())
    npn = nproc_per_node or world_size
    ms = meta["summary"]["ms_median"]
    meta.update(world_size=world_size, backend=backend, nnodes=world_size // npn, nproc_per_node=npn)
    meta["ranks"] = [
        {"rank": r, "local_rank": r % npn, "node_rank": r // npn, "host": f"node{r // npn}",
         "device": f"{meta['device']}:{r % npn}", "ms_median": ms, "allreduce_ms_median": share * ms,
         "outside_allreduce_ms_median": (1 - share) * ms * (straggler if r == slowest else 1.0), "cpu_cores": 1.0}
        for r in range(world_size)
    ]  # fmt: skip
    if measured:
        meta["summary"].update(
            allreduce_ms_median=share * ms, allreduce_share=share, allreduce_bytes_per_step=4_000_000,
            straggler_ratio=straggler, slowest_rank=slowest, params_identical=identical,
        )  # fmt: skip
    (rd / "run.json").write_text(json.dumps(meta))
    return meta


def tokens_per_s(root: Path, run_id: str) -> float:
    return json.loads((root / "runs" / run_id / "run.json").read_text())["summary"]["tokens_per_s"]


def test_no_data_parallel_run_no_scaling_finding(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "cpu-a", train=SHORT)
    synthetic.write_run(d, "cpu-b", batch_size=24, train=SHORT)
    findings = diagnose(load_results(d))
    assert not [f for f in findings if f.kind in ("scaling", "shared_cores", "scaling_limit", "ranks_differ")]


def test_gpus_weak_scaling_efficiency_and_compute_limited(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r", hw=synthetic.hwinfo(gpus=("Synthetic GPU",) * 4))
    synthetic.write_run(d, "one-b8", batch_size=8, ms=50.0, **GPU)
    synthetic.write_run(d, "one-b32", batch_size=32, ms=150.0, **GPU)
    ddp_run(d, "four-b32", world_size=4, batch_size=32, ms=55.0, share=0.1, **GPU)
    findings = diagnose(load_results(d))

    (scaling,) = kinds(findings, "scaling")
    eff = tokens_per_s(d, "four-b32") / (4 * tokens_per_s(d, "one-b8"))
    (weak,) = scaling.evidence["weak_scaling"]
    assert weak["baseline"] == "laptop/one-b8" and abs(weak["efficiency"] - eff) < 1e-9
    assert scaling.evidence["weak"] == weak and weak["ideal"] == pytest.approx(4 * tokens_per_s(d, "one-b8"))
    same = tokens_per_s(d, "four-b32") / tokens_per_s(d, "one-b32")
    (same_batch,) = scaling.evidence["same_global_batch"]
    assert same_batch["baseline"] == "laptop/one-b32" and same_batch["ratio"] == pytest.approx(same)
    assert [p["world_size"] for p in scaling.evidence["points"]] == [1, 1, 4]
    assert not kinds(findings, "shared_cores")

    (limit,) = kinds(findings, "scaling_limit")
    assert limit.evidence["limit"] == "compute" and limit.severity == "info"
    ms = json.loads((d / "runs" / "four-b32" / "run.json").read_text())["summary"]["ms_median"]
    assert limit.evidence["ms_median"] == pytest.approx(ms) and limit.evidence[
        "allreduce_share"
    ] == pytest.approx(0.1)
    assert limit.evidence["allreduce_bytes_per_step"] == 4e6 and limit.explains == pytest.approx(0.1)


def test_communication_limited_run_says_so_with_its_share(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    synthetic.write_run(d, "one-b8", batch_size=8, ms=50.0, **GPU)
    ddp_run(d, "two-nodes-b16", world_size=2, nproc_per_node=1, batch_size=16, ms=100.0, share=0.45, **GPU)
    findings = diagnose(load_results(d))
    (limit,) = kinds(findings, "scaling_limit")
    assert limit.evidence["limit"] == "communication" and limit.severity == "warning"
    assert limit.evidence["allreduce_share"] == pytest.approx(0.45) and not limit.evidence["shares_device"]
    assert limit.evidence["nnodes"] == 2 and limit.evidence["backend"] == "nccl"
    (scaling,) = kinds(findings, "scaling")
    eff = tokens_per_s(d, "two-nodes-b16") / (2 * tokens_per_s(d, "one-b8"))
    assert scaling.evidence["weak"]["efficiency"] == pytest.approx(eff) and eff < 0.6


def test_a_straggler_is_named_with_its_host_and_device(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    ddp_run(d, "eight-b64", world_size=8, nproc_per_node=4, batch_size=64, ms=80.0, share=0.2, straggler=1.5,
            slowest=6, **GPU)  # fmt: skip
    findings = diagnose(load_results(d))
    (limit,) = kinds(findings, "scaling_limit")
    assert limit.evidence["limit"] == "straggler" and limit.severity == "warning"
    assert limit.evidence["slowest_rank"] == 6 and limit.evidence["slowest_rank_at"] == "node1, cuda:2"
    assert limit.evidence["straggler_ratio"] == 1.5
    (scaling,) = kinds(findings, "scaling")
    assert scaling.evidence["alone"] == {"run": "laptop/eight-b64", "per_rank_batch": 8}


def test_ranks_sharing_one_cpu_are_contention_never_a_speedup(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r", hw=synthetic.hwinfo(physical_cores=4))
    synthetic.write_run(d, "cpu-b12", batch_size=12, ms=40.0, threads=4, train=SHORT)
    ddp_run(d, "cpu-b12-ddp2", world_size=2, backend="gloo", batch_size=12, ms=60.0, share=0.35, threads=1,
            train=SHORT)  # fmt: skip
    findings = diagnose(load_results(d))
    (shared,) = kinds(findings, "shared_cores")
    assert shared.severity == "warning"
    assert shared.evidence["physical_cores"] == 4 and shared.evidence["nproc_per_node"] == 2
    assert shared.evidence["threads_per_rank"] == 1 and shared.evidence["idle_cores"] == 2
    (scaling,) = kinds(findings, "scaling")
    assert scaling.evidence["shared"] and "speedup" not in scaling.sentence
    ratio = tokens_per_s(d, "cpu-b12-ddp2") / tokens_per_s(d, "cpu-b12")
    assert scaling.evidence["same"]["ratio"] == pytest.approx(ratio)
    (limit,) = kinds(findings, "scaling_limit")
    assert (
        limit.severity == "info"
        and limit.evidence["shares_device"]
        and limit.evidence["limit"] == "communication"
    )


def test_ranks_with_different_weights_and_unmeasured_all_reduce_are_flagged(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    ddp_run(d, "two-b8", world_size=2, batch_size=8, identical=False, **GPU)
    ddp_run(d, "old-two-b16", world_size=2, batch_size=16, measured=False, **GPU)
    findings = diagnose(load_results(d))
    (differ,) = kinds(findings, "ranks_differ")
    assert differ.severity == "warning" and differ.runs == ["laptop/two-b8"]
    unmeasured = [f for f in kinds(findings, "scaling_limit") if f.runs == ["laptop/old-two-b16"]]
    assert unmeasured and unmeasured[0].evidence["limit"] is None

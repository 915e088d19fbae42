"""`bench report` on real runs made here: tiny CPU sweeps under two host labels, merged into one page.

The sweeps are made once per module (`bench run`, tens of iterations, a 1-layer model) and reused.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from reports.diagnosis import diagnose
from reports.load import load_results

TINY = ["--devices", "cpu", "--iters", "30", "--eval-interval", "10", "--eval-iters", "2", "--timing-warmup-iters", "5",
        "--n-layer", "1", "--n-embd", "32", "--n-head", "2", "--block-size", "16", "--no-progress"]  # fmt: skip
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory) -> dict[str, Path]:
    """laptop: batch 4 and 8; desktop: batch 4 with one thread (same config as laptop's b4)."""
    root = tmp_path_factory.mktemp("report-sweeps")
    laptop, desktop = root / "laptop", root / "desktop"
    assert main(["run", *TINY, "--batch-sizes", "4,8", "--host", "laptop", "--out", str(laptop)]) == 0
    assert (
        main(
            ["run", *TINY, "--batch-sizes", "4", "--threads", "1", "--host", "desktop", "--out", str(desktop)]
        )
        == 0
    )
    return {"laptop": laptop, "desktop": desktop}


@pytest.fixture(scope="module")
def merged_html(sweeps, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report-html") / "page" / "report.html"
    assert main(["report", str(sweeps["laptop"]), str(sweeps["desktop"]), "--html", str(out)]) == 0
    return out, out.read_text()


def test_load_reads_what_bench_run_wrote(sweeps):
    results = load_results([sweeps["laptop"], sweeps["desktop"]])
    assert sorted(results.runs.index) == [
        "desktop/cpu-fp32-b4-eager-t1", "laptop/cpu-fp32-b4-eager", "laptop/cpu-fp32-b8-eager",
    ]  # fmt: skip
    assert list(results.hosts["host"]) == ["laptop", "desktop"]
    for key, r in results.runs.iterrows():
        steps = results.steps_of(key)
        on_disk = pd.read_csv(Path(r["run_dir"]) / "steps.csv")
        assert len(steps) == len(on_disk) == 30
        assert r["ms_median"] == pytest.approx(
            on_disk.loc[on_disk["phase"] == "timed", "ms"].median(), abs=1e-3
        )
        evals = results.evals_of(key)
        assert sorted(set(evals["iter"])) == [0, 10, 20, 30] and set(evals["split"]) == {"train", "val"}


def test_text_summary(sweeps, capsys):
    assert main(["report", str(sweeps["laptop"])]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert re.match(r"^.+ fp32: [\d,]+ tokens/s", lines[0])  # the answer first: one device
    assert lines[2].split()[:3] == ["host", "run", "device"]
    meta = json.loads((sweeps["laptop"] / "runs/cpu-fp32-b8-eager/run.json").read_text())
    row = next(line for line in lines if "cpu-fp32-b8-eager" in line)
    assert row.startswith("laptop") and row.rstrip().endswith("ok")
    s = meta["summary"]
    assert f"{s['final_val_loss']:.4f}" in row and f"{s['tokens_per_s']:,.0f}" in row
    assert "Findings, most of the step or gap first:" in captured.out
    assert captured.err == ""  # no --html: nothing on stderr


def test_markdown_and_csv(sweeps, capsys):
    assert main(["report", str(sweeps["laptop"]), "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert re.match(r"^\*\*.+ fp32: [\d,]+ tokens/s", md) and md.count("| laptop |") == 2
    assert md.splitlines()[2].startswith("| host | run |")
    assert main(["report", str(sweeps["laptop"]), "--format", "csv"]) == 0
    from io import StringIO

    table = pd.read_csv(StringIO(capsys.readouterr().out))
    for _, r in table.iterrows():
        meta = json.loads((sweeps["laptop"] / "runs" / r["run_id"] / "run.json").read_text())
        assert r["ms_median"] == pytest.approx(meta["summary"]["ms_median"])
        assert r["mfu_vs_a100"] == pytest.approx(meta["summary"]["achieved_flops_per_s"] / 312e12)


def test_json_findings_with_nanogpt_timer_figure(sweeps, capsys):
    assert main(["report", str(sweeps["laptop"]), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["schema"] == "devicebench-report/1" and len(report["runs"]) == 2
    by_kind = {f["kind"]: f for f in report["findings"]}
    assert {"config_mismatch", "eval_in_timer", "mfu_vs_a100"} <= set(by_kind)
    timer = by_kind["eval_in_timer"]
    run_dir = sweeps["laptop"] / "runs" / timer["evidence"]["key"].split("/", 1)[1]
    steps = pd.read_csv(run_dir / "steps.csv").set_index("iter")["ms"]
    evals = pd.read_csv(run_dir / "evals.csv").groupby("iter")["ms"].sum()
    expected = {str(i): steps[i] + evals[i] for i in (10, 20)}  # what nanoGPT's timer spans: eval + step
    assert timer["evidence"]["printed_by_iter"] == pytest.approx(expected, rel=1e-6)


def test_merged_hosts_page_is_self_contained(merged_html):
    path, page = merged_html
    for section in ("summary", "diagnosis", "loss", "timing", "hardware", "metadata"):
        assert f'<section id="{section}">' in page
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', page)) == 3
    for name in ("loss", "runs", "tokens"):
        assert f'id="plot-{name}"' in page
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", page, flags=re.I)
    assert refs and all(r.startswith(("data:", "#")) for r in refs), [
        r for r in refs if not r.startswith(("data:", "#"))
    ]
    assert not re.search(r"url\(|@import|<script|<link|<iframe", page, flags=re.I)
    assert "laptop/cpu-fp32-b4-eager" in page and "desktop/cpu-fp32-b4-eager-t1" in page


def test_merged_hosts_same_config_losses_agree(sweeps):
    results = load_results([sweeps["laptop"], sweeps["desktop"]])
    findings = diagnose(results)
    (agree,) = [f for f in findings if f.kind in ("loss_agree", "loss_disagree")]
    assert sorted(agree.runs) == ["desktop/cpu-fp32-b4-eager-t1", "laptop/cpu-fp32-b4-eager"]
    # same config and seed: the same batches, so the curves agree across the two "machines"
    assert agree.kind == "loss_agree" and agree.evidence["max_abs_val_diff"] < 1e-3
    threads = [f for f in findings if f.kind == "cpu_threads"]
    assert {f.evidence["threads"][0] for f in threads} >= {1}
    assert {f.evidence["host"] for f in threads} == {"laptop", "desktop"}


def test_default_dir_is_newest_and_default_html_path(sweeps, tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    shutil.copytree(sweeps["laptop"], results / "a")
    shutil.copytree(sweeps["desktop"], results / "b")
    now = time.time()
    import os

    os.utime(results / "a/sweep.json", (now - 100, now - 100))
    monkeypatch.chdir(tmp_path)
    assert main(["report", "--html"]) == 0
    captured = capsys.readouterr()
    assert "desktop" in captured.out and "laptop" not in captured.out
    assert (results / "b/report.html").is_file() and "report: results/b/report.html" in captured.err


def test_report_never_imports_torch(sweeps, tmp_path):
    code = (
        "import sys\nfrom bench.cli import main\n"
        f"rc = main(['report', {str(sweeps['laptop'])!r}, '--html', {str(tmp_path / 'r.html')!r}])\n"
        "assert rc == 0, rc\nassert 'torch' not in sys.modules, 'torch imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for path in (REPO / "reports").glob("*.py"):
        assert not re.search(
            r"^\s*(import torch|from torch)|bench\.(train|runner)|from model", path.read_text(), re.M
        ), path


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.browser
def test_page_renders_in_headless_chromium(merged_html, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    path, _ = merged_html
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
           path.resolve().as_uri()]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    from matplotlib.image import imread

    img = imread(str(shot))
    assert img.shape[:2] == (2000, 1280)
    gray = img[..., :3].mean(axis=2)
    assert gray.std() > 0.05  # not a blank page
    # the plots are drawn: many distinct colours, not just text on white
    colours = np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200


@pytest.mark.browser
def test_each_finding_has_its_evidence_table_in_the_page_chromium_parses(merged_html, tmp_path):
    """The DOM Chromium builds (not our markup as text): every finding of the diagnosis and the headline
    holds a folded <details> with its evidence table."""
    browser = _chromium()
    if browser is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    path, page = merged_html
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", path.resolve().as_uri()]  # fmt: skip
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    diagnosis = dom[dom.index('<section id="diagnosis">') :].split("</section>")[0]
    items = re.findall(r"<li class=\"(?:info|warning)\" id=\"[^\"]+\">.*?</li>", diagnosis, flags=re.S)
    assert items and len(items) == page.count('<li class="info" id=') + page.count('<li class="warning" id=')
    for item in items:
        assert re.search(r"<details><summary>evidence</summary><table class=\"ev\"><tbody><tr><th>", item), (
            item
        )
    headline = dom[dom.index('<div class="headline">') :].split("</div>")[0]
    assert '<table class="ev">' in headline

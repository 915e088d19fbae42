"""A report of many runs stays readable and quick: per-run plots draw a chosen few, the steps of each run
come from its span of the merged frame."""

from __future__ import annotations

from reports.load import load_results
from reports.plots import RUNS_MAX, plotted_runs
from tests import fixtures as synthetic

SHORT = {"max_iters": 20, "lr_decay_iters": 20, "eval_interval": 10, "timing_warmup_iters": 2}


def test_per_run_plots_draw_the_fastest_of_each_device_then_the_fastest(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    for i in range(RUNS_MAX + 5):
        synthetic.write_run(d, f"cpu-{i}", batch_size=4 + i, ms=50.0 + i, train=SHORT, seed=i)
    synthetic.write_run(d, "slow-gpu", device="cuda:0", device_name="GPU", ms=900.0, train=SHORT)
    results = load_results(d)
    keys = list(results.runs.index)
    few, note = plotted_runs(results, keys)
    assert len(few) == RUNS_MAX and f"{RUNS_MAX} of the {len(keys)} runs" in note
    assert "laptop/slow-gpu" in few  # the only run of its device, however slow
    assert few == [k for k in keys if k in set(few)]  # display order kept
    dropped = set(keys) - set(few)
    slowest_kept = min(results.runs.loc[k, "tokens_per_s"] for k in few if k != "laptop/slow-gpu")
    assert all(results.runs.loc[k, "tokens_per_s"] <= slowest_kept for k in dropped)
    assert plotted_runs(results, keys[:5]) == (keys[:5], "")


def test_steps_of_a_run_are_its_own_rows(tmp_path):
    d = synthetic.write_sweep(tmp_path / "r")
    for i in range(3):
        synthetic.write_run(d, f"cpu-{i}", ms=10.0 * (i + 1), train=SHORT, seed=i)
    results = load_results(d)
    for key in results.runs.index:
        s, e = results.steps_of(key), results.evals_of(key)
        assert len(s) == 20 and set(s["key"]) == {key} and set(e["key"]) == {key}
    results.steps = results.steps.iloc[::-1]  # a frame replaced after loading is grouped, not sliced
    assert set(results.steps_of("laptop/cpu-1")["key"]) == {"laptop/cpu-1"}


def test_a_long_html_table_shows_its_first_rows_and_collapses_the_rest():
    import pandas as pd

    from reports.html import TABLE_OPEN_ROWS, _table

    n = TABLE_OPEN_ROWS + 7
    html = _table(pd.DataFrame({"run": [f"run-{i}" for i in range(n)]}))
    shown, _, rest = html.partition("<details>")
    assert (
        shown.count("<tr>") == TABLE_OPEN_ROWS + 1 and "7 more rows" in rest and rest.count("<tr>") == 7 + 1
    )
    assert all(f">run-{i}<" in html for i in range(n))
    assert "<details>" not in _table(pd.DataFrame({"run": ["a", "b"]}))

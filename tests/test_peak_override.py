"""--peak-flops DTYPE=VALUE: parsed once (hwinfo.peaks) for bench run and bench import."""

from __future__ import annotations

import pytest

from hwinfo.peaks import parse_peak_flops, user_peak


def test_units_and_lists():
    got = parse_peak_flops(["fp32=1.35e12", "bf16=2.7T, fp16=900 GFLOP/s", "tf32=5e13"])
    assert got == {"fp32": 1.35e12, "bf16": 2.7e12, "fp16": 9e11, "tf32": 5e13}


@pytest.mark.parametrize(
    "bad", ["x", "fp64=1e12", "fp32=0", "fp32=-1", "fp32=abc", "fp32=inf", "fp32=nan", "=1"]
)
def test_bad_items_are_one_line_errors(bad):
    with pytest.raises(ValueError) as e:
        parse_peak_flops(bad)
    assert "\n" not in str(e.value) and "--peak-flops" in str(e.value)


def test_user_peak_is_labelled():
    peak = user_peak(1.35e12, "fp32", "the laptop")
    assert peak["source"] == "user" and peak["value"] == 1.35e12 and "1.35 TFLOP/s" in peak["detail"]


def test_a_figure_too_large_says_the_upper_limit():
    with pytest.raises(ValueError) as e:
        parse_peak_flops("fp32=1e30")
    assert "below 1e19" in str(e.value)
    assert parse_peak_flops("fp32=9.9e18") == {"fp32": 9.9e18}

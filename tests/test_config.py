"""One source of truth for every setting: TOML, flags and a stored sweep's config go through the same
checks, and a bad value is one line naming the key, the value and what is allowed (issue 15)."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from bench.cli import build_parser, main
from bench.config import (
    DOC_BEGIN,
    DOC_END,
    SECTIONS,
    BenchConfig,
    ConfigError,
    TrainConfig,
    config_from_dict,
    load_toml,
    reference_markdown,
    settings,
)
from bench.run_cmd import RUN_OPTIONS, _config_flags_given, config_from_args

DOCS = Path(__file__).resolve().parent.parent / "docs" / "config.md"
SHA = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"


def parse(*argv: str):
    return build_parser(only="run").parse_args(["run", *argv])


def from_flags(*argv: str) -> BenchConfig:
    return config_from_args(parse(*argv))


def from_toml(tmp_path: Path, text: str) -> BenchConfig:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return load_toml(path)


def one_line_error(capsys, argv: list[str]) -> str:
    """`bench run ARGV --dry-run`'s stderr, asserted to be one line and exit 2."""
    code = main(["run", *argv, "--devices", "cpu", "--dry-run"])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err and len(captured.err.strip().splitlines()) == 1, captured.err
    assert captured.out == ""  # nothing planned, nothing run
    return captured.err.strip()


# --- the cases of issue 15, one by one: each passed, or failed with a Python message, on the old code ---

ISSUE_TOML = [
    ('[model]\nbias = "no"\n', "[model] bias = 'no': expected true or false"),
    (
        '[sweep]\ndevices = "cpu"\n',
        "[sweep] devices = 'cpu': expected a list of non-empty strings; write devices = [\"cpu\"]",
    ),
    ("[sweep]\nbatch_sizes = [true]\n", "[sweep] batch_sizes = [true]: true is not an integer from 1 to"),
    ("[train]\nmax_iters = 20.7\n", "[train] max_iters = 20.7: expected an integer from 1 to"),
    ("[sweep]\nbatch_sizes = [12.5]\n", "[sweep] batch_sizes = [12.5]: 12.5 is not an integer"),
    ("[model]\nn_layer = 1e9\n", "[model] n_layer = 1000000000.0: expected an integer from 1 to 1024"),
    ("[model]\nn_layer = 1000000000\n", "[model] n_layer = 1000000000: expected an integer from 1 to 1024"),
    (
        '[sweep]\nthreads = ["x"]\n',
        "[sweep] threads = ['x']: 'x' is not an integer from 1 to 4096 or \"default\"",
    ),
    ("[sweep]\nbatch_sizes = 12\n", "[sweep] batch_sizes = 12: expected a non-empty list of integers"),
    ("[sweep]\nhost = 42\n", "[sweep] host = 42: expected a label of letters, digits"),
    ("[train]\ngrad_clip = -1.0\n", "[train] grad_clip = -1.0: expected a number >= 0"),
    ("[train]\nwarmup_iters = -1\n", "[train] warmup_iters = -1: expected an integer from 0 to"),
    ("[train]\nlr_decay_iters = -5\n", "[train] lr_decay_iters = -5: expected an integer from 1 to"),
    ("[model]\ndropout = 1.5\n", "[model] dropout = 1.5: expected a number in [0, 1)"),
]


@pytest.mark.parametrize(("toml", "message"), ISSUE_TOML, ids=[t.split("\n")[1] for t, _ in ISSUE_TOML])
def test_issue_toml_cases_are_one_line_naming_key_value_and_allowed(tmp_path, capsys, toml, message):
    path = tmp_path / "sweep.toml"
    path.write_text(toml)
    err = one_line_error(capsys, ["--config", str(path)])
    assert err.startswith(f"bench run: error: {path}: ") and message in err


ISSUE_FLAGS = [
    (["--seed", "100000000000000000000000"], "--seed 100000000000000000000000: expected an integer from 0 to 9223372036854775807"),
    (["--profile", "-3"], "--profile -3: expected a number of steps >= 1"),
    (["--profile", "0"], "--profile 0: expected a number of steps >= 1"),
    (["--iters", "20.7"], "--iters 20.7: expected an integer"),
    (["--iters", "1e9"], "--iters 1e9: expected an integer"),
    (["--batch-sizes", "4,x"], "--batch-sizes 4,x: 'x' is not an integer from 1 to"),
    (["--batch-sizes", ","], "--batch-sizes ,: expected a comma-separated list of integers"),
    (["--threads", "0"], "--threads 0: 0 is not an integer from 1 to 4096"),
    (["--dropout", "nan"], "--dropout nan: expected a number in [0, 1)"),
    (["--learning-rate", "inf"], "--learning-rate inf: expected a number > 0"),
    (["--dtypes", "fp32,fp64"], "--dtypes fp32,fp64: 'fp64' is not one of fp32, tf32, bf16, fp16"),
    (["--compile", "turbo"], "--compile turbo: 'turbo' is not one of off, on, reduce-overhead, max-autotune"),
    (["--host", "my box"], "--host my box: expected a label of letters, digits, '.', '_' and '-' (at most 100), e.g. 'my-box'"),
    (["--n-head", "3"], "[model] n_embd = 128: expected a multiple of n_head = 3"),
    (["--n-embd", "0"], "--n-embd 0: expected an integer from 1 to 65536"),
    (["--peak-flops", "fp64=1e12"], "--peak-flops takes DTYPE=VALUE"),
    (["--peak-flops", "fp32=1T", "--peak-flops", "bf16=abc"], "--peak-flops bf16: 'abc' is not a FLOP/s figure"),
    (["--data", "file:///etc/passwd"], "--data file:///etc/passwd: expected a file path or an http(s) URL, not file://"),
    (["--data", "x.txt", "--sha256", "abc"], "--sha256 abc: expected a SHA-256 digest: 64 hex digits"),
    (["--sha256", SHA], "data_sha256 is set but data is not"),
    (["--config", ""], "--config '': expected the path of a TOML file"),
    (["--learning-rate", "1e-5"], "[train] min_lr = 0.0001: expected at most learning_rate = 1e-05"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), ISSUE_FLAGS, ids=[" ".join(a) for a, _ in ISSUE_FLAGS])
def test_bad_flags_are_one_line_before_anything_starts(capsys, argv, message):
    err = one_line_error(capsys, argv)
    assert message in err, err


def test_old_warmup_flag_is_refused_naming_both_warmups(capsys):
    for argv in (["--warmup-iters", "3"], ["--warmup-iters"]):
        err = one_line_error(capsys, argv)
        assert "--timing-warmup-iters" in err and "--lr-warmup-iters" in err


def test_the_two_warmups_have_their_own_flags_and_keys(tmp_path):
    cfg = from_flags("--lr-warmup-iters", "7", "--timing-warmup-iters", "3")
    assert (cfg.train.warmup_iters, cfg.train.timing_warmup_iters) == (7, 3)
    cfg = from_toml(tmp_path, "[train]\nwarmup_iters = 7\ntiming_warmup_iters = 3\n")
    assert (cfg.train.warmup_iters, cfg.train.timing_warmup_iters) == (7, 3)


def test_duplicate_axis_values_run_once_in_order(tmp_path, capsys):
    cfg = from_flags(
        "--batch-sizes", "8,4,8,4", "--threads", "2,default,2,auto", "--dtypes", "bf16,fp32,bf16"
    )
    assert (
        cfg.sweep.batch_sizes == [8, 4]
        and cfg.sweep.threads == [2, None]
        and cfg.sweep.dtypes == ["bf16", "fp32"]
    )
    cfg = from_toml(tmp_path, '[sweep]\ndevices = ["cpu", "cpu"]\ncompile = ["off", "off"]\n')
    assert cfg.sweep.devices == ["cpu"] and cfg.sweep.compile == ["off"]
    assert main(["run", "--devices", "cpu", "--batch-sizes", "4,4", "--dry-run"]) == 0
    assert "1 run(s)" in capsys.readouterr().out


def test_iters_at_or_below_the_timing_warmup_is_a_warning():
    assert from_flags("--iters", "11").validate() == []
    for iters in ("10", "3"):
        (warning,) = from_flags("--iters", iters).validate()
        assert f"--iters {iters} is at or below the timing warm-up of 10 steps" in warning
        assert "median" in warning and "warm-up step" in warning
    assert from_flags("--iters", "3", "--timing-warmup-iters", "0").validate() == []


# --- strict types, everywhere ---


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[train]\nmax_iters = true\n", "[train] max_iters = true"),  # a bool is not an integer
        ("[train]\nlearning_rate = false\n", "[train] learning_rate = false"),
        ('[train]\nlearning_rate = "1e-3"\n', "[train] learning_rate = '1e-3'"),
        ("[train]\nlearning_rate = nan\n", "[train] learning_rate = nan"),
        ("[train]\ndecay_lr = 1\n", "[train] decay_lr = 1: expected true or false"),
        ("[train]\nseed = -1\n", "[train] seed = -1"),
        ("[train]\nbeta2 = 1.0\n", "[train] beta2 = 1.0: expected a number in [0, 1)"),
        ("[train]\nweight_decay = -0.1\n", "[train] weight_decay = -0.1"),
        ("[train]\neval_interval = 0\n", "[train] eval_interval = 0"),
        ("[train]\neval_iters = 0\n", "[train] eval_iters = 0"),
        ("[sweep]\nbatch_sizes = []\n", "[sweep] batch_sizes = []: expected a non-empty list"),
        ("[sweep]\ndevices = [1]\n", "[sweep] devices = [1]: 1 is not a non-empty string"),
        ('[sweep]\nthreads = "default"\n', 'write threads = ["default"]'),
        ("[sweep]\npeak_flops = 1e12\n", "[sweep] peak_flops = 1000000000000.0: expected a table"),
        ("[sweep]\npeak_flops = {fp32 = true}\n", "'True' is not a FLOP/s figure"),
        ("[model]\nn_head = 0\n", "[model] n_head = 0: expected an integer from 1 to 1024"),
        ("[model]\nn_embd = 100\nn_head = 3\n", "[model] n_embd = 100: expected a multiple of n_head = 3"),
        ("[model]\nvocab_size = 99999999999\n", "[model] vocab_size = 99999999999"),
        ("model = 3\n", "[model] must be a table of settings, got 3"),
        ("[train]\nseed = 1979-05-27\n", "[train] seed = 1979-05-27: expected an integer"),
    ],
)
def test_toml_types_and_ranges(tmp_path, toml, key):
    with pytest.raises(ConfigError) as e:
        from_toml(tmp_path, toml)
    assert key in str(e.value) and "\n" not in str(e.value)
    assert e.value.exit_code == 2


def test_floats_take_integers_and_are_stored_as_floats(tmp_path):
    cfg = from_toml(tmp_path, "[train]\ngrad_clip = 1\nlearning_rate = 2\nmin_lr = 0\n[model]\ndropout = 0\n")
    assert cfg.train.grad_clip == 1.0 and isinstance(cfg.train.grad_clip, float)
    assert isinstance(cfg.train.learning_rate, float) and isinstance(cfg.model.dropout, float)
    assert cfg.validate() == []


def test_min_lr_above_learning_rate_is_allowed_when_the_lr_does_not_decay():
    assert from_flags("--learning-rate", "1e-5", "--no-decay-lr").validate() == []


def test_every_setting_refuses_a_wrong_type_from_toml_flags_and_a_stored_config(tmp_path):
    """One checker behind the three readers: a wrong value is refused by each, naming the setting."""
    wrong = {bool: "yes", int: 2.5, float: "x", str: 42}
    for s in settings():
        base = next((t for t in wrong if s.type in (t, t | None)), None)
        value = [True] if s.is_list else 5 if s.is_table else wrong[base or str]
        if s.name == "devices":
            value = [1]
        with pytest.raises(ConfigError, match=re.escape(f"[{s.section}] {s.name} = ")):
            config_from_dict({s.section: {s.name: value}})
        toml = f"[{s.section}]\n{s.name} = {json.dumps(value)}\n"
        with pytest.raises(ConfigError, match=re.escape(f"[{s.section}] {s.name} = ")):
            from_toml(tmp_path, toml)
        if not s.is_bool and s.name != "devices":
            text = {int: "2.5", float: "x"}.get(base, "x") if not s.is_list else "true"
            if s.name in ("dtypes", "compile", "host", "data_sha256") or s.is_table:
                text = "x y/z"
            if s.name == "data":
                text = "ftp://x"
            with pytest.raises(ConfigError) as e:
                from_flags(s.flag, text)
            assert s.flag in str(e.value), (s.name, str(e.value))


# --- flags are made from the fields ---


def test_every_setting_has_its_flag_and_every_flag_is_a_setting_or_a_run_option():
    p = build_parser(only="run")
    run = next(a for a in p._actions if a.dest == "command").choices["run"]
    flags = {o for a in run._actions for o in a.option_strings if a.help != "==SUPPRESS=="}
    from_settings = {s.flag for s in settings()} | {f"--no-{s.flag[2:]}" for s in settings() if s.is_bool}
    assert flags == from_settings | {f for f, _ in RUN_OPTIONS} | {"-h", "--help", "--debug"}
    names = [s.name for s in settings()]
    assert len(names) == len(set(names))  # each is a flag dest and a TOML key: no two alike
    assert not set(names) & {kw.get("dest", f[2:].replace("-", "_")) for f, kw in RUN_OPTIONS}


def test_every_field_has_help():
    for cls in SECTIONS.values():
        for f in fields(cls):
            assert f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"


def test_flags_override_toml_over_defaults(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(
        '[model]\nn_layer = 2\nbias = true\n[train]\nseed = 5\n[sweep]\nbatch_sizes = [3]\nhost = "box"\n'
    )
    cfg = from_flags("--config", str(path), "--seed", "7", "--no-bias", "--batch-sizes", "4,8")
    assert (cfg.model.n_layer, cfg.model.bias, cfg.train.seed) == (2, False, 7)
    assert cfg.sweep.batch_sizes == [4, 8] and cfg.sweep.host == "box"
    assert cfg.train.max_iters == TrainConfig().max_iters


def test_config_flags_given_sees_every_setting_flag():
    assert not _config_flags_given(parse("--out", "x", "--resume", "--no-progress"))
    for argv in (["--no-bias"], ["--peak-flops", "fp32=1T"], ["--data", "x.txt"], ["--lr-decay-iters", "5"]):
        assert _config_flags_given(parse(*argv)), argv


def test_profile_is_parsed_to_steps():
    for argv, steps in (([], 0), (["--profile"], 5), (["--profile", "3"], 3)):
        args = parse(*argv)
        config_from_args(args)
        assert args.profile == steps


# --- the new settings ---


def test_peak_flops_from_toml_and_repeated_or_comma_flags(tmp_path):
    cfg = from_toml(tmp_path, '[sweep]\npeak_flops = {fp32 = 1.35e12, BF16 = "2.7T"}\n')
    assert cfg.sweep.peak_flops == {"fp32": 1.35e12, "bf16": 2.7e12}
    cfg = from_flags("--peak-flops", "fp32=1.35e12,bf16=2.7T", "--peak-flops", "fp16=900G")
    assert cfg.sweep.peak_flops == {"fp32": 1.35e12, "bf16": 2.7e12, "fp16": 9e11}


def test_data_and_sha256(tmp_path):
    cfg = from_flags("--data", "https://example.org/input.txt", "--sha256", SHA.upper())
    assert cfg.train.data == "https://example.org/input.txt" and cfg.train.data_sha256 == SHA
    train = cfg.to_dict()["train"]
    assert train["data"] == "https://example.org/input.txt" and train["data_sha256"] == SHA
    cfg = from_toml(tmp_path, f'[train]\ndata = "in put.txt"\ndata_sha256 = "{SHA}"\n')
    assert cfg.train.data == "in put.txt"


# --- the stored config (--resume) and to_dict compatibility ---

OLD_SPEC = {  # BenchConfig().to_dict() before data, data_sha256 and peak_flops existed
    "model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "vocab_size": 65, "dropout": 0.0,
              "bias": False},
    "train": {"max_iters": 2000, "learning_rate": 0.001, "min_lr": 0.0001, "warmup_iters": 100,
              "lr_decay_iters": 2000, "decay_lr": True, "weight_decay": 0.1, "beta1": 0.9, "beta2": 0.99,
              "grad_clip": 1.0, "eval_interval": 250, "eval_iters": 20, "seed": 1337, "timing_warmup_iters": 10},
    "sweep": {"devices": [], "batch_sizes": [12], "dtypes": ["fp32"], "compile": ["off"], "threads": [None],
              "host": None},
}  # fmt: skip


def test_to_dict_at_the_defaults_is_what_older_sweeps_stored():
    assert BenchConfig().to_dict() == OLD_SPEC
    assert config_from_dict(OLD_SPEC).to_dict() == OLD_SPEC  # an older sweep still resumes


def test_stored_config_round_trips_through_json():
    cfg = from_flags(
        "--threads", "default,2", "--peak-flops", "fp32=1T", "--data", "x.txt", "--sha256", SHA,
        "--host", "box", "--no-bias", "--lr-decay-iters", "50", "--devices", "cpu,cuda",
    )  # fmt: skip
    spec = json.loads(json.dumps(cfg.to_dict()))
    assert config_from_dict(spec).to_dict() == cfg.to_dict()


def test_stored_config_is_checked_like_toml():
    with pytest.raises(ConfigError) as e:
        config_from_dict({**OLD_SPEC, "train": {**OLD_SPEC["train"], "seed": 10**30}})
    assert "sweep.json" in str(e.value) and "[train] seed = 1000000000000000000000000000000" in str(e.value)
    with pytest.raises(ConfigError, match="unknown key"):
        config_from_dict({"train": {"bogus": 1}})
    with pytest.raises(ConfigError, match="expected a table"):
        config_from_dict(["x"])
    with pytest.raises(ConfigError, match="multiple of n_head"):
        config_from_dict({"model": {"n_head": 3}})


# --- the TOML file itself ---


def test_toml_file_problems_are_one_line(tmp_path):
    cases = {tmp_path / "missing.toml": "no such file", tmp_path: "is a directory"}
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    cases[binary] = "not a text file"
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    cases[bad] = "is not valid TOML"
    for path, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_toml(path)


def test_unknown_key_suggests_the_close_one(tmp_path):
    with pytest.raises(ConfigError) as e:
        from_toml(tmp_path, "[train]\nmax_iter = 5\n")
    assert "unknown key(s) in [train]: max_iter (did you mean: max_iter -> max_iters?)" in str(e.value)


# --- docs/config.md ---


def test_docs_tables_are_generated_from_the_fields():
    text = DOCS.read_text()
    generated = text.split(DOC_BEGIN, 1)[1].split(DOC_END, 1)[0]
    assert generated.strip() == reference_markdown().strip(), (
        "docs/config.md is out of date: run `python -m bench.config docs/config.md`"
    )


def test_docs_toml_example_loads(tmp_path):
    example = DOCS.read_text().split("```toml\n", 1)[1].split("```", 1)[0]
    cfg = from_toml(tmp_path, example)
    assert cfg.validate() == []
    assert cfg.sweep.peak_flops == {"fp32": 1.35e12, "bf16": 2.7e12} and cfg.train.data_sha256 == SHA


def test_a_setting_outside_its_table_is_pointed_home(tmp_path):
    with pytest.raises(ConfigError) as e:
        from_toml(tmp_path, "max_iters = 5\n[sweep]\nbatch_sizes = [4]\n")
    assert "max_iters belongs in [train]" in str(e.value)
    with pytest.raises(ConfigError, match="unknown table"):
        from_toml(tmp_path, "[optim]\nlr = 1\n")


def test_empty_strings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("[sweep] devices = ['']: '' is not a non-empty string")):
        from_toml(tmp_path, '[sweep]\ndevices = [""]\n')
    with pytest.raises(ConfigError, match=re.escape("[train] data = ''")):
        from_toml(tmp_path, '[train]\ndata = ""\n')


def test_run_help_and_the_config_checks_do_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys\nfrom bench.cli import main\ntry:\n main(['run', '--help'])\nexcept SystemExit: pass\n"
        "from bench.config import BenchConfig\nBenchConfig().validate()\n"
        "assert 'torch' not in sys.modules, 'bench run --help imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)

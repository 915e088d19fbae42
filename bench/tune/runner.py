"""`bench tune`'s runs on one device, recorded as ordinary runs of a results directory.

Order: the throughput variants (alternated with the default), their best combination, then the time-to-loss
phase (the default's full run sets the target; the batch variants and the best configuration take turns to
it). A variant that cannot run here is recorded as skipped, with why. docs/tune.md has the details.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psutil
import torch
from tqdm import tqdm

from bench import profile as bench_profile
from bench.devices import DtypeUnsupported
from bench.metrics import step_summary
from bench.results import ResultsError, atomic_write_json, read_json
from bench.runner import HostLoad, Interrupted, RunSpec
from bench.train import Trainer
from bench.tune import levers
from bench.tune import measure as tune_measure
from bench.tune import to_loss as tune_to_loss
from bench.tune.child import ChildTrainer, child_env
from bench.tune.measure import PairResult, Side
from bench.tune.plan import BEST, BEST_TO_LOSS, DEFAULT, Knobs, Variant, best_knobs
from bench.tune.to_loss import ToLoss, ToLossRun
from bench.tune.verdict import (
    INCONCLUSIVE,
    MIN_EFFECT,
    NO_EFFECT,
    STOP_BUDGET,
    STOP_MAX_PAIRS,
    THROUGHPUT,
    TIME_TO_LOSS,
    VERDICTS,
    Candidate,
    choose_best,
    spoiled_pairs,
    throughput_effect,
    what_would_settle,
)

if TYPE_CHECKING:
    from bench.config import BenchConfig
    from bench.devices import Device
    from bench.runner import Sweep
    from model.dataset import CharDataset

# Per throughput variant, the most seconds of pairs of blocks (warm-ups not counted). Sized from pairs measured on
# a 2-core CPU (docs/tune.md): in a quiet minute the log of a pair's ratio spreads by 0.03 to 0.045 with 3-step
# blocks, so "no effect" settles in about 6 pairs and an effect 2% from the bar's edge in about 30 (0.25-s blocks:
# ~0.5 s a pair); 20 s holds 40 such pairs, and the reference recipe's 7 CPU throughput variants and their best
# combination then take under 3 minutes of pairs, under 5 with warm-ups and compiles.
MAX_SECONDS = 20.0
BLOCK_SECONDS = 0.25
TIME_CAP = 1.1  # a time-to-loss variant stops once its clock passes this many times the default's time:
# not there by then, its speed is below 1/1.1 = 0.91, which is harmful (at least 5% slower) already


@dataclass(frozen=True)
class TuneOptions:
    """How `bench tune` measures (sweep.json "tune"); --resume requires the same."""

    tips: tuple[str, ...]
    repeats: int = 6  # the least pairs of blocks per throughput variant
    block_seconds: float = BLOCK_SECONDS
    max_seconds: float = MAX_SECONDS
    warmup_steps: int = 3
    time_cap: float = TIME_CAP
    profile_steps: int = 5

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tips"] = list(self.tips)
        return d


class Tuner:
    """Runs one device's variants into the sweep's results directory."""

    def __init__(
        self,
        sweep: Sweep,
        cfg: BenchConfig,
        options: TuneOptions,
        dataset: CharDataset,
        progress: bool = True,
    ) -> None:
        self.sweep = sweep
        self.results = sweep.results
        self.cfg = cfg
        self.options = options
        self.dataset = dataset
        self.progress = progress

    # ---- the device's plan -----------------------------------------------------------------------------
    def run_device(
        self, device: Device, variants: list[Variant], default: Knobs, resume: bool
    ) -> dict[str, str]:
        """Every variant of one device; returns {run_id: status}. Raises bench.runner.Interrupted."""
        self.device, self.default = device, default
        self._default_side: Side | None = None
        self._default_tokens_per_s: list[float] = []  # every block of the default measured so far
        statuses: dict[str, str] = {}
        label = device.label
        for v in variants:
            if v.unavailable:
                self.results.record_skipped(v.run_id(label), self._meta(v), v.unavailable)
                statuses[v.run_id(label)] = "skipped"
                _say(f"{v.run_id(label)}: not available: {v.unavailable}")
        todo = [v for v in variants if not v.unavailable]
        profile = self.options.profile_steps and any(v.measure == DEFAULT for v in todo)
        try:
            throughput = [v for v in todo if v.measure == THROUGHPUT]
            if profile and throughput and not self._profile_path().exists():
                self._profile_default_side()
            for v in throughput:
                statuses[v.run_id(label)] = self._once(v, resume, self._throughput)
            candidates = self._candidates(variants)
            if throughput:
                _say(verdict_summary(device.label, [v for v in throughput if v.name in {c.name for c in candidates}],
                                     candidates))  # fmt: skip
            chosen = choose_best(candidates)
            best = self._combined(BEST, THROUGHPUT, chosen)
            if best is not None:
                statuses[best.run_id(label)] = self._once(best, resume, self._throughput)
            self._default_side = None  # its steps are done: free it before the full runs
            to_loss = [v for v in todo if v.measure in (DEFAULT, TIME_TO_LOSS)]
            best_ttl = self._combined(BEST_TO_LOSS, TIME_TO_LOSS, chosen)
            if best_ttl is not None and to_loss:
                to_loss.append(best_ttl)
            if to_loss:
                statuses.update(self._to_loss_phase(to_loss, resume))
        finally:
            self._default_side = None
            device.empty_cache()
        return statuses

    def _combined(self, name: str, measure: str, chosen: dict[str, Candidate]) -> Variant | None:
        """The default with every chosen knob; None when that is the default, or (tokens/s) one single
        variant already measured."""
        if not chosen or (measure == THROUGHPUT and len(chosen) < 2):
            return None
        knobs = best_knobs(self.default, {g: c.knobs for g, c in chosen.items()})
        names = sorted(c.name for c in chosen.values())
        return Variant(self.device.name, name, name, "+".join(names), knobs, measure)

    def _candidates(self, variants: list[Variant]) -> list[Candidate]:
        """The finished throughput variants with their tokens/s against the default (from their run.json)."""
        out = []
        for v in variants:
            if v.measure != THROUGHPUT or v.unavailable:
                continue
            meta = self._read(v.run_id(self.device.label)) or {}
            tune = meta.get("tune") or {}
            samples, default = tune.get("samples_tokens_per_s"), tune.get("default_samples_tokens_per_s")
            if meta.get("status") == "ok" and samples and default:
                out.append(Candidate(v.name, v.group, v.knobs.to_dict(), throughput_effect(samples, default)))
        return out

    @property
    def default_run_id(self) -> str:
        return f"{self.device.label}-{DEFAULT}"

    def _read(self, run_id: str) -> dict | None:
        path = self.results.run_dir(run_id) / "run.json"
        if not path.exists():
            return None
        try:
            return read_json(path)
        except ResultsError:
            return None

    def _once(self, v: Variant, resume: bool, how: Any) -> str:
        run_id = v.run_id(self.device.label)
        if resume and self.results.run_status(run_id) == "ok":
            _say(f"{run_id}: already done (resume)")
            return "ok"
        return how(v)

    # ---- one run's metadata and lifecycle ----------------------------------------------------------------
    def _threads(self, knobs: Knobs) -> int | None:
        if not self.device.uses_cpu_threads:
            return None
        return knobs.threads if knobs.threads is not None else torch.get_num_threads()

    def _meta(self, v: Variant) -> dict:
        spec = RunSpec(v.device, v.knobs.dtype, v.knobs.batch_size, v.knobs.compile, v.knobs.threads)
        meta = self.sweep._meta(spec, self.device)
        meta["threads"] = self._threads(v.knobs)
        meta["tune"] = v.tune_meta(self.default)
        return meta

    def _trainer(self, knobs: Knobs) -> Any:
        if knobs.needs_child:
            lib = (
                levers.find_library(levers.ALLOCATORS[knobs.allocator][0])
                if knobs.allocator in levers.ALLOCATORS
                else None
            )
            if knobs.allocator != "system" and lib is None:
                raise RuntimeError(f"{knobs.allocator} is no longer installed")
            return ChildTrainer(self.cfg, knobs, self.device, child_env(knobs, lib))
        return Trainer(self.cfg.model, self.cfg.train, self.device, knobs.dtype, knobs.compile, knobs.batch_size,
                       self.dataset, fused_adamw=knobs.fused_adamw)  # fmt: skip

    def _start(self, v: Variant) -> tuple[Any, dict, Any, Any] | None:
        """(trainer, meta, writer, host load) for a variant, or None when it could not be built (recorded)."""
        run_id = v.run_id(self.device.label)
        meta = self._meta(v)
        try:
            trainer = self._trainer(v.knobs)
        except DtypeUnsupported as e:
            self.results.record_skipped(run_id, meta, str(e))
            _say(f"{run_id}: not available: {e}")
            return None
        except Exception as e:  # noqa: BLE001 - a variant that cannot be built fails alone
            reason = _reason(self.device, e, "building the model", v.knobs.batch_size)
            self.results.record_failed(run_id, meta, f"could not start: {reason}")
            _say(f"{run_id}: failed: could not start: {reason}")
            self.device.empty_cache()
            return None
        writer = self.results.new_run(run_id, {**meta, "status": "running", "started": _now()})
        writer.write_meta()
        return trainer, meta, writer, HostLoad(psutil.Process())

    def _finish(
        self, writer: Any, meta: dict, status: str, error: str | None, summary: dict, tune: dict, load: Any
    ) -> None:
        summary["host_load"] = load.finish()
        writer.write_meta(status=status, error=error, summary=summary, finished=_now(),
                          tune={**meta["tune"], **tune})  # fmt: skip
        writer.close()

    # ---- throughput: alternated with the default ----------------------------------------------------------
    def _default(self) -> Side:
        if self._default_side is None:
            self._default_side = Side(self._trainer(self.default), self.default)
        return self._default_side

    def _profile_default_side(self) -> None:
        """Before the throughput variants, so their why has its evidence even if the full runs never finish."""
        try:
            side = self._default()
            with side.active():
                warm = side.steps(self.options.warmup_steps, "warmup")
            self._profile(side, warm)
        except KeyboardInterrupt as e:
            raise Interrupted(self.default_run_id, getattr(e, "signal_name", None) or "Ctrl-C") from None
        except Exception as e:  # noqa: BLE001 - the default's problems show in the variants' runs
            _say(f"{self.default_run_id}: profile skipped: {type(e).__name__}: {e}")
            self._default_side = None

    def _throughput(self, v: Variant) -> str:
        run_id = v.run_id(self.device.label)
        # a variant in a process of its own is compared with the default in another: only the environment differs
        # (built after the variant's own: a variant whose process cannot start costs no second process)
        own_default = v.knobs.needs_child
        if not own_default:
            try:
                default = self._default()
            except Exception as e:  # noqa: BLE001
                reason = _reason(self.device, e, "building the default", self.default.batch_size)
                self.results.record_failed(run_id, self._meta(v), f"could not start: the default: {reason}")
                _say(f"{run_id}: failed: could not start the default: {reason}")
                return "failed"
        started = self._start(v)
        if started is None:
            return self.results.run_status(run_id) or "failed"
        trainer, meta, writer, load = started
        side = Side(trainer, v.knobs, on_step=writer.step)
        if own_default:
            meta["tune"]["process"] = {"env": trainer.env, "preloaded": trainer.loaded,
                                       "launcher": list(levers.LAUNCHERS.get(v.knobs.omp_affinity or "", ())),
                                       "default": "a process of its own, without that environment"}  # fmt: skip
            try:
                default = Side(ChildTrainer(self.cfg, self.default, self.device, {}), self.default)
            except Exception as e:  # noqa: BLE001
                _close(trainer)
                reason = f"could not start: the default: {_reason(self.device, e, 'building it', self.default.batch_size)}"
                self._finish(writer, meta, "failed", reason, self._summary(side, meta, load), {}, load)
                _say(f"{run_id}: failed: {reason}")
                return "failed"
        pair = PairResult()
        o = self.options
        status, error = "ok", None
        compiled = trainer.compiled or default.trainer.compiled
        _say(f"{run_id}: {', '.join(meta['tune']['changed'])} against the default, at least {o.repeats} pairs of "
             f"blocks, more until the verdict is known or {o.max_seconds:g} s of them"
             + (" (compiling first)" if trainer.compiled else ""))  # fmt: skip
        try:
            with self.device.clean_compiler_state() if compiled else contextlib.nullcontext():
                tune_measure.measure_pair(default, side, o.repeats, o.block_seconds, o.warmup_steps, desc=run_id,
                             progress=self.progress, result=pair, max_seconds=o.max_seconds)  # fmt: skip
        except KeyboardInterrupt as e:
            how = getattr(e, "signal_name", None) or "Ctrl-C"
            self._finish(writer, meta, "interrupted", f"interrupted by {how} during {pair.where}",
                         self._summary(side, meta, load), self._pair_numbers(pair), load)  # fmt: skip
            raise Interrupted(run_id, how) from None
        except Exception as e:  # noqa: BLE001 - one variant that fails (out of memory, compile error) fails alone
            status, error = "failed", _reason(self.device, e, pair.where, v.knobs.batch_size)
            self._default_side = None  # its state may be broken too: the next variant builds it afresh
        finally:
            _close(trainer)
            if own_default:
                _close(default.trainer)
            del trainer
            self.device.empty_cache()
        self._finish(
            writer, meta, status, error, self._summary(side, meta, load), self._pair_numbers(pair), load
        )
        self._default_tokens_per_s += pair.default_tokens_per_s
        line = f"{run_id}: {status}"
        if status == "ok":
            line += ": " + progress_words(v, pair)
        _say(line + (f" ({error})" if error else ""))
        return status

    def _pair_numbers(self, pair: Any) -> dict:
        o = self.options
        return {
            "samples_tokens_per_s": pair.variant_tokens_per_s,
            "default_samples_tokens_per_s": pair.default_tokens_per_s,
            "steps_per_block": {"variant": pair.variant_steps_per_block, "default": pair.default_steps_per_block},
            "repeats": o.repeats, "block_seconds": o.block_seconds, "warmup_steps": o.warmup_steps,
            "max_seconds": o.max_seconds, "pairs": min(len(pair.variant_tokens_per_s), len(pair.default_tokens_per_s)),
            "pairs_s": pair.pairs_s, "stopped": pair.stopped,
            "spoiled_pairs": spoiled_pairs(pair.variant_tokens_per_s, pair.default_tokens_per_s),
            "would_settle": what_would_settle(pair.variant_tokens_per_s, pair.default_tokens_per_s, pair.pairs_s),
        }  # fmt: skip

    def _summary(
        self, side: Side, meta: dict, load: Any, eval_ms_total: float = 0.0, losses: dict | None = None
    ) -> dict:
        """run.json's summary, with the keys `bench run` writes (the ms/iter figures over this run's timed steps)."""
        summary = step_summary(side.timed_ms, meta["tokens_per_iter"], meta["flops_per_iter"],
                               meta["peak_flops"].get("value"))  # fmt: skip
        summary.update({
            "iters_done": side.it, "warmup_iters": side.it - len(side.timed_ms), "first_step_ms": side.first_step_ms,
            "final_train_loss": (losses or {}).get("train"), "final_val_loss": (losses or {}).get("val"),
            "eval_ms_total": eval_ms_total, "wall_s": time.perf_counter() - load.t0,
        })  # fmt: skip
        return summary

    # ---- time to loss: the default and the variants that change the recipe, in turns --------------------
    def _to_loss_estimate(self, runs: list[tuple[Variant, dict]]) -> str | None:
        """How long the phase will take, said before it starts (it is most of a tune on a CPU): the recipe's
        steps at the default's measured tokens/s, then each variant up to --time-cap times that. None when the
        default's speed is not known yet (no throughput variant ran) or its full run is not part of the phase."""
        default = next((meta for v, meta in runs if v.measure == DEFAULT), None)
        if default is None or not self._default_tokens_per_s or not default.get("tokens_per_iter"):
            return None
        tokens_per_s = statistics.median(self._default_tokens_per_s)
        recipe_s = self.cfg.train.max_iters * default["tokens_per_iter"] / tokens_per_s
        n_variants = len(runs) - 1
        total_s = recipe_s * (1 + self.options.time_cap * n_variants)
        if n_variants == 0:
            return (f"about {_minutes(recipe_s)}, plus evals: the default's {self.cfg.train.max_iters} steps at its "
                    f"{tokens_per_s:,.0f} tokens/s (num_workers and eval_iters are answered from its run)")  # fmt: skip
        return (f"up to about {_minutes(total_s)}, plus evals: the default's {self.cfg.train.max_iters} steps "
                f"({_minutes(recipe_s)} at its {tokens_per_s:,.0f} tokens/s) set the target, then {n_variants} "
                f"variant(s) run to it, each for at most {self.options.time_cap:g}x the default's time "
                "(the batch tips: leave batch_x2,batch_x4 out of --tips to skip this phase)")  # fmt: skip

    def _to_loss_phase(self, variants: list[Variant], resume: bool) -> dict[str, str]:
        label = self.device.label
        statuses: dict[str, str] = {}
        todo = []
        for v in variants:
            if resume and self.results.run_status(v.run_id(label)) == "ok":
                _say(f"{v.run_id(label)}: already done (resume)")
                statuses[v.run_id(label)] = "ok"
            else:
                todo.append(v)
        target = cap = None
        if not any(v.measure == DEFAULT for v in todo):
            dtune = ((self._read(self.default_run_id) or {}).get("tune")) or {}
            if self.results.run_status(self.default_run_id) != "ok" or not dtune.get("time_to_target_s"):
                reason = f"no target: the default's full run ({self.default_run_id}) did not finish"
                for v in todo:
                    self.results.record_skipped(v.run_id(label), self._meta(v), reason)
                    statuses[v.run_id(label)] = "skipped"
                    _say(f"{v.run_id(label)}: skipped: {reason}")
                return statuses
            target, cap = dtune["target_val_loss"], self.options.time_cap * dtune["time_to_target_s"]
        runs: list[tuple[Variant, ToLossRun, dict, Any]] = []
        bar = tqdm(total=self.cfg.train.max_iters * len(todo), desc=f"{label} to loss", unit="it", file=sys.stderr,
                   leave=False, disable=None if self.progress else True, mininterval=0.5)  # fmt: skip
        for v in todo:
            started = self._start(v)
            if started is None:
                statuses[v.run_id(label)] = self.results.run_status(v.run_id(label)) or "failed"
                continue
            trainer, meta, writer, load = started
            state = ToLoss(None if v.measure == DEFAULT else target, None if v.measure == DEFAULT else cap)
            run = ToLossRun(
                Side(trainer, v.knobs), writer, state, v.measure == DEFAULT, lambda: bar.update(1)
            )
            runs.append((v, run, meta, load))
            if v.measure == DEFAULT:
                _say(f"{v.run_id(label)}: the recipe to its end (its final val loss is the target)")
            else:
                _say(
                    f"{v.run_id(label)}: {', '.join(meta['tune']['changed']) or 'the recipe'}: to the target"
                )
        estimate = self._to_loss_estimate([(v, meta) for v, _, meta, _ in runs])
        if estimate:
            _say(f"{label}: time to loss: {estimate}")
        compiled = any(r.side.trainer.compiled for _, r, _, _ in runs)
        try:
            with self.device.clean_compiler_state() if compiled else contextlib.nullcontext():
                tune_to_loss.run_interleaved(
                    [r for _, r, _, _ in runs], self.options.block_seconds, self.options.time_cap, target, cap
                )
                for v, r, _, _ in runs:
                    if v.measure == DEFAULT and r.error is None and self.options.profile_steps:
                        if not self._profile_path().exists():
                            r.state.where = "profiling"
                            self._profile(r.side, r.side.timed_ms)
        except KeyboardInterrupt as e:
            how = getattr(e, "signal_name", None) or "Ctrl-C"
            # every run of the phase: they took turns, so --resume runs them again together
            for _v, r, meta, load in runs:
                _close(r.side.trainer)
                self._finish(r.writer, meta, "interrupted", f"interrupted by {how} during {r.state.where}",
                             self._summary(r.side, meta, load, r.state.eval_ms_total, r.state.losses),
                             r.state.to_dict(), load)  # fmt: skip
            raise Interrupted(
                next((v.run_id(label) for v, r, _, _ in runs if not r.done), label), how
            ) from None
        finally:
            bar.close()
        for v, r, meta, load in runs:
            run_id = v.run_id(label)
            status, error = "ok", None
            if r.error is not None:
                status, error = "failed", _reason(self.device, r.error, r.state.where, v.knobs.batch_size)
            elif v.measure == DEFAULT and r.state.reached_s is None:
                status, error = (
                    "failed",
                    "no finite val loss at the end of the recipe: no target for the variants",
                )
            summary = self._summary(r.side, meta, load, r.state.eval_ms_total, r.state.losses)
            self._finish(r.writer, meta, status, error, summary, r.state.to_dict(), load)
            statuses[run_id] = status
            st = r.state
            line = f"{run_id}: {status}"
            if status == "ok" and v.measure == DEFAULT:
                line += f", val loss {st.target:.4f} in {st.reached_s:.1f} s (the target of the others)"
            elif status == "ok" and st.reached_s is not None:
                line += f", val loss {st.target:.4f} at iter {st.reached_iter} in {st.reached_s:.1f} s"
            elif status == "ok":
                line += f", not at the target ({st.stopped}, {st.clock_ms / 1e3:.1f} s)"
            _say(line + (f" ({error})" if error else ""))
        for _, r, _, _ in runs:
            _close(r.side.trainer)
        runs.clear()
        self.device.empty_cache()
        return statuses

    def _profile_path(self) -> Any:
        return self.results.run_dir(self.default_run_id) / "profile.json"

    def _profile(self, side: Side, warm_ms: list[float]) -> None:
        """A few extra steps of the default under the profiler: where its step goes, into the default run's
        profile.json (the evidence behind the tips' why). warm_ms: its unprofiled steps (the overhead)."""
        trainer = side.trainer
        meta = self._meta(Variant(self.device.name, DEFAULT, DEFAULT, "", self.default, DEFAULT))
        try:
            with side.active():
                prof = bench_profile.profile_steps(
                    trainer, n_steps=self.options.profile_steps, start_iter=side.it,
                    unprofiled_ms_median=statistics.median(warm_ms[1:] or warm_ms) if warm_ms else None,
                    peak_flops_per_s=meta["peak_flops"].get("value"),
                )  # fmt: skip
        except Exception as e:  # noqa: BLE001 - the tips are measured without it; the why lines say so
            _say(f"{self.default_run_id}: profile skipped: {type(e).__name__}: {e}")
            return
        prof["run_id"] = self.default_run_id
        atomic_write_json(self._profile_path(), prof)
        _say(f"{self.default_run_id}: profiled {self.options.profile_steps} steps of the default into "
             f"{self._profile_path()}")  # fmt: skip


def _close(trainer: Any) -> None:
    """End a variant's own process (bench.tune.child.ChildTrainer); nothing for an in-process Trainer."""
    close = getattr(trainer, "close", None)
    if close is not None:
        close()


def verdict_summary(label: str, variants: list[Variant], candidates: list[Candidate]) -> str:
    """One line after a device's throughput variants: their verdicts counted the tips table's way (a variant
    that turns a tip off read the other way round), and, when every one had no effect, that said plainly."""
    effects = {c.name: c.effect for c in candidates}
    verdicts = []
    for v in variants:
        e = effects[v.name]
        verdicts.append((e if v.applies_tip else e.inverted()).verdict)
    if not verdicts:
        return f"{label}: no throughput variant finished"
    counts = ", ".join(f"{k} {verdicts.count(k)}" for k in VERDICTS if k in verdicts)
    conclusive = sum(1 for x in verdicts if x != INCONCLUSIVE)
    line = f"{label}: {len(verdicts)} throughput variant(s) measured, {conclusive} conclusive: {counts}"
    if all(x == NO_EFFECT for x in verdicts):
        line += (f". Every tip measured had no effect here (each within +-{MIN_EFFECT:.0%} of the default, the "
                 "interval settled): the recipe as it is is as fast as any of them, and there is no best "
                 "configuration to measure")  # fmt: skip
    return line


def progress_words(v: Variant, pair: Any) -> str:
    """A finished throughput variant's line: how many pairs and why they stopped, then the effect read the way
    the tips table reads it (the tip's way: a variant that turns off a tip the recipe follows is inverted, so the
    line and the table never disagree)."""
    e = throughput_effect(pair.variant_tokens_per_s, pair.default_tokens_per_s)
    n = min(len(pair.variant_tokens_per_s), len(pair.default_tokens_per_s))
    dropped = f", {e.n_spoiled} spoiled by load dropped" if e.n_spoiled else ""
    head = f"{n} pairs ({pair.stopped or 'stopped'}{dropped}{_would_settle(pair)}), "
    if v.applies_tip:
        return head + f"tokens/s {_effect(e)} the default's: {e.verdict}"
    t = e.inverted()
    return head + (f"the recipe already follows the tip ({v.tip}), so this variant turns it off: the variant's "
                   f"tokens/s {_effect(e)} the default's, the tip {_effect(t)}: {t.verdict}")  # fmt: skip


def _would_settle(pair: Any) -> str:
    """What more measuring would take, for pairs that stopped before their verdict was known."""
    if pair.stopped not in (STOP_BUDGET, STOP_MAX_PAIRS):
        return ""
    w = what_would_settle(pair.variant_tokens_per_s, pair.default_tokens_per_s, pair.pairs_s)
    if w is None:
        return ""
    if w["pairs_needed"] is None:
        return "; the effect sits on an edge of the bar: no number of pairs settles it"
    secs = f", ~{w['seconds_needed']:.0f} s of them" if w["seconds_needed"] is not None else ""
    return f"; at this spread ({w['spread']:.3f}) about {w['pairs_needed']} pairs{secs} would settle it"


def _effect(e: Any) -> str:
    if e.ratio is None:
        return "?"
    return f"{e.ratio:.3g}x" + (
        f" [{e.low:.3g}-{e.high:.3g}]" if e.low is not None and e.high is not None else ""
    )


def _reason(device: Device, e: BaseException, where: str, batch_size: int) -> str:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    if device.is_oom(e):
        return f"out of memory at batch size {batch_size} during {where}: {first}"
    return f"{type(e).__name__}: {first} during {where}"


def _minutes(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _say(msg: str) -> None:
    tqdm.write(msg, file=sys.stderr)

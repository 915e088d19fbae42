"""Text from a model: each run's sample.txt, and `bench sample RUN_DIR|ckpt.pt`.

Every run that finishes ok writes sample.txt: SAMPLE_TOKENS characters from its final model after the prompt
"\\n", seed 1337, temperature 0.8 and top-k 200 (nanoGPT sample.py's), so a reader of the report sees what its
val loss means in text. `bench sample` makes one on demand from a run's checkpoint.pt or a nanoGPT ckpt.pt.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from bench.config import ConfigError
from bench.results import atomic_write_text

if TYPE_CHECKING:
    from bench.results import RunWriter
    from bench.runner import RunLoop
    from bench.train import Trainer
    from model.gpt import GPT

SAMPLE_NAME = "sample.txt"


def sample_text(model: GPT, chars: list[str] | str, prompt: str, tokens: int, seed: int,
                temperature: float | None = None, top_k: int | None = None) -> str:  # fmt: skip
    """The prompt and `tokens` characters drawn from model (generate's defaults for temperature and top-k)."""
    from model.dataset import CharTokenizer
    from model.generate import SAMPLE_TEMPERATURE, SAMPLE_TOP_K, generate

    tok = CharTokenizer("".join(chars))
    ids = generate(model, tok.encode(prompt), tokens, SAMPLE_TEMPERATURE if temperature is None else temperature,
                   SAMPLE_TOP_K if top_k is None else top_k, seed, vocab_limit=tok.vocab_size)  # fmt: skip
    return tok.decode(ids)


def finish_run(trainer: Trainer, writer: RunWriter, loop: RunLoop, save_checkpoint: bool) -> None:
    """After a run's final eval: checkpoint.pt (with --save-checkpoint) and sample.txt, recorded in run.json."""
    from bench.checkpoint import save
    from model.generate import SAMPLE_PROMPT, SAMPLE_SEED, SAMPLE_TEMPERATURE, SAMPLE_TOKENS, SAMPLE_TOP_K

    updates: dict[str, Any] = {}
    if save_checkpoint:
        loop.where = "saving the checkpoint"
        meta = writer.meta
        run = {k: meta.get(k) for k in ("run_id", "host", "device", "dtype", "threads", "compile")}
        updates["checkpoint"] = save(
            trainer, writer.dir, trainer.train_cfg.max_iters, loop.checkpoint_eval_states, run
        )
    loop.where = "writing the sample"
    chars = trainer.dataset.tokenizer.chars
    prompt = SAMPLE_PROMPT if SAMPLE_PROMPT in chars else chars[0]  # a text without newlines starts elsewhere
    t0 = time.perf_counter()
    try:
        with trainer.autocast():
            text = sample_text(trainer.model, chars, prompt, SAMPLE_TOKENS, SAMPLE_SEED)
        atomic_write_text(writer.dir / SAMPLE_NAME, text)
    except Exception as e:  # noqa: BLE001 - the run's figures stand without its sample; say why it has none
        updates["sample"] = {"error": f"{type(e).__name__}: {str(e).strip()[:200]}"}
    else:
        updates["sample"] = {"file": SAMPLE_NAME, "prompt": prompt, "tokens": SAMPLE_TOKENS, "seed": SAMPLE_SEED,
                             "temperature": SAMPLE_TEMPERATURE, "top_k": SAMPLE_TOP_K,
                             "ms": (time.perf_counter() - t0) * 1e3}  # fmt: skip
    writer.write_meta(**updates)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from model.generate import SAMPLE_SEED, SAMPLE_TEMPERATURE, SAMPLE_TOKENS, SAMPLE_TOP_K

    p.add_argument("source", metavar="RUN_DIR|ckpt.pt",
                   help="a run directory saved with `bench run --save-checkpoint`, or a nanoGPT train.py ckpt.pt")  # fmt: skip
    p.add_argument(
        "--tokens",
        default=str(SAMPLE_TOKENS),
        metavar="N",
        help=f"characters to draw (default {SAMPLE_TOKENS})",
    )
    p.add_argument(
        "--seed", default=str(SAMPLE_SEED), metavar="S", help=f"sampling seed (default {SAMPLE_SEED})"
    )
    p.add_argument("--prompt", default="\n", metavar="TEXT", help="text to start from (default a newline)")
    p.add_argument("--temperature", default=str(SAMPLE_TEMPERATURE), metavar="T",
                   help=f"softmax temperature (default {SAMPLE_TEMPERATURE}, as nanoGPT sample.py)")  # fmt: skip
    p.add_argument("--top-k", default=str(SAMPLE_TOP_K), metavar="K",
                   help=f"draw among the K likeliest characters (default {SAMPLE_TOP_K}, as nanoGPT sample.py)")  # fmt: skip
    p.add_argument("--device", default="cpu", help="device to sample on (default cpu)")
    p.add_argument("--data", metavar="PATH_OR_URL",
                   help="for a nanoGPT ckpt.pt: the text whose characters its ids stand for (default the bundled Tiny "
                   "Shakespeare, the characters of nanoGPT's shakespeare_char)")  # fmt: skip
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow a checkpoint that the safe loader refuses (it can run code from the file)")  # fmt: skip


def _number(value: str, flag: str, kind: type, low: float) -> Any:
    try:
        n = kind(value)
    except ValueError:
        n = None
    if n is None or not n >= low or n != n or n == float("inf"):
        raise ConfigError(
            f"{flag} {value}: expected {'an integer' if kind is int else 'a number'} >= {low:g}"
        )
    return n


def run(args: argparse.Namespace) -> int:
    """`bench sample`: print a sample from a checkpoint to stdout."""
    import torch

    from bench.checkpoint import check_data, open_source
    from bench.devices import parse_device
    from model.dataset import CharDataset
    from model.gpt import GPT

    tokens = _number(args.tokens, "--tokens", int, 1)
    seed = _number(args.seed, "--seed", int, 0)
    temperature = _number(args.temperature, "--temperature", float, 1e-6)
    top_k = _number(args.top_k, "--top-k", int, 1)
    if not args.prompt:
        raise ConfigError("--prompt '': expected at least one character")
    device = parse_device(args.device)
    src = open_source(args.source, args.trust_checkpoint)
    if src.vocab is not None:
        chars = src.vocab
    else:
        dataset = CharDataset.load(args.data)
        check_data(src, dataset)
        chars = "".join(dataset.tokenizer.chars)
        print(
            f"characters: those of {dataset.source} ({len(chars)}), as the checkpoint holds none",
            file=sys.stderr,
        )
    if args.prompt == "\n" and "\n" not in chars:  # the default prompt: as a run's sample.txt starts
        args.prompt = chars[0]
    missing = sorted(set(args.prompt) - set(chars))
    if missing:
        raise ConfigError(f"--prompt: {missing[0]!r} is not one of the model's {len(chars)} characters")
    torch.manual_seed(0)
    model = GPT(src.model_cfg)
    model.load_state_dict(src.model_state)
    model.to(device.torch_device)
    text = sample_text(model, chars, args.prompt, tokens, seed, temperature, top_k)
    print(f"{src.kind} checkpoint at iter {src.iter_num}: {tokens} characters, seed {seed}, temperature "
          f"{temperature:g}, top-k {top_k}", file=sys.stderr)  # fmt: skip
    sys.stdout.write(text + ("" if text.endswith("\n") else "\n"))
    return 0

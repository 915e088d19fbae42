"""The model's shape, without torch, so reports and log imports can use it.

Each field's metadata carries its help and range (ge/gt/le/lt); bench.config reads them to build the
TOML reader, the `bench run` flags and the checks (model/ imports nothing from bench).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class GPTConfig:
    """Model shape. Defaults are nanoGPT's Shakespeare-char CPU recipe."""

    n_layer: int = field(default=4, metadata={"help": "transformer blocks", "ge": 1, "le": 1024})
    n_head: int = field(default=4, metadata={"help": "attention heads per block", "ge": 1, "le": 1024})
    n_embd: int = field(
        default=128, metadata={"help": "embedding width; a multiple of n_head", "ge": 1, "le": 65536}
    )
    block_size: int = field(default=64, metadata={"help": "context length in tokens", "ge": 1, "le": 1 << 20})
    vocab_size: int = field(
        default=65,
        metadata={"help": "token embedding rows; at least the data's vocabulary (65 characters for Tiny "
                  "Shakespeare)", "ge": 1, "le": 1 << 24},
    )  # fmt: skip
    dropout: float = field(default=0.0, metadata={"help": "dropout probability", "ge": 0.0, "lt": 1.0})
    bias: bool = field(default=False, metadata={"help": "bias in Linear and LayerNorm layers"})

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")

    def to_dict(self) -> dict:
        return asdict(self)

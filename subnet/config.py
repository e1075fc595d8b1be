"""Typed training presets (hparams/*.yaml).

A preset is loaded strictly: an unknown key, a wrong type or an impossible value is a `ConfigError`
that names the key and the file, because a typo in an operator's preset must not silently train
something else.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HPARAMS_DIR = Path(__file__).resolve().parent.parent / "hparams"


class ConfigError(ValueError):
    """A preset file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class ModelConfig:
    vocab_size: int = 1024
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 4
    intermediate_size: int = 256
    seq_len: int = 64
    tie_embeddings: bool = False
    rope_theta: float = 10000.0

    def problems(self) -> list[tuple[str, str]]:
        out = []
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                     "intermediate_size", "seq_len"):
            if getattr(self, name) < 1:
                out.append((name, "must be >= 1"))
        if self.vocab_size > 65535:
            out.append(("vocab_size", "must be <= 65535 (token shards are uint16)"))
        if self.num_heads >= 1 and self.hidden_size % self.num_heads:
            out.append(("hidden_size", f"{self.hidden_size} is not divisible by num_heads={self.num_heads}"))
        if self.num_kv_heads >= 1 and self.num_heads % self.num_kv_heads:
            out.append(("num_kv_heads", f"num_heads={self.num_heads} is not a multiple of {self.num_kv_heads}"))
        if self.rope_theta <= 0:
            out.append(("rope_theta", "must be > 0"))
        return out


@dataclass(frozen=True)
class TrainConfig:
    """Inner optimisation of one miner: AdamW, linear warm-up then cosine decay."""
    batch_size: int = 8
    inner_steps: int = 10
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    cosine_steps: int = 2000
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0

    def problems(self) -> list[tuple[str, str]]:
        out = []
        for name in ("batch_size", "inner_steps", "cosine_steps"):
            if getattr(self, name) < 1:
                out.append((name, "must be >= 1"))
        if self.warmup_steps < 0:
            out.append(("warmup_steps", "must be >= 0"))
        if self.lr <= 0:
            out.append(("lr", "must be > 0"))
        if not 0 <= self.min_lr_ratio <= 1:
            out.append(("min_lr_ratio", "must be in [0, 1]"))
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                out.append((name, "must be in [0, 1)"))
        if self.weight_decay < 0:
            out.append(("weight_decay", "must be >= 0"))
        if self.grad_clip <= 0:
            out.append(("grad_clip", "must be > 0"))
        return out


@dataclass(frozen=True)
class CompressionConfig:
    """SparseLoCo-style codec: error feedback, tile x tile chunks, top-k per chunk, few-bit values."""
    tile: int = 64
    topk: int = 64
    value_bits: int = 2
    ef_decay: float = 0.95
    use_dct: bool = False

    @property
    def chunk_size(self) -> int:
        return self.tile * self.tile

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.tile < 1:
            out.append(("tile", "must be >= 1"))
        if self.topk < 1:
            out.append(("topk", "must be >= 1"))
        elif self.tile >= 1 and self.topk > self.chunk_size:
            out.append(("topk", f"{self.topk} is larger than the chunk ({self.tile}x{self.tile} = "
                                f"{self.chunk_size} values)"))
        if not 1 <= self.value_bits <= 8:
            out.append(("value_bits", "must be in [1, 8]"))
        if not 0 <= self.ef_decay <= 1:
            out.append(("ef_decay", "must be in [0, 1]"))
        return out


@dataclass(frozen=True)
class OuterConfig:
    """Outer step: the compressed protocol's lr, and dense DiLoCo's Nesterov SGD (the baseline)."""
    lr: float = 1.0
    diloco_lr: float = 0.7
    diloco_momentum: float = 0.9

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.lr <= 0:
            out.append(("lr", "must be > 0"))
        if self.diloco_lr <= 0:
            out.append(("diloco_lr", "must be > 0"))
        if not 0 <= self.diloco_momentum < 1:
            out.append(("diloco_momentum", "must be in [0, 1)"))
        return out


@dataclass(frozen=True)
class Preset:
    name: str = "tiny"
    seed: int = 1234
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    outer: OuterConfig = field(default_factory=OuterConfig)

    @property
    def samples_per_window(self) -> int:
        """Samples one miner trains on in one window: H inner steps of one batch each."""
        return self.train.batch_size * self.train.inner_steps


def value_has_type(value: object, annotation: object) -> bool:
    """YAML value check for a plain field type; an int is a float, a bool is not an int."""
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return False


def _type_name(annotation: object) -> str:
    return getattr(annotation, "__name__", str(annotation))


def _build(cls: type, data: object, where: str, path: Path):
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: {where or 'top level'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in known:
            dotted = f"{where}.{key}" if where else str(key)
            raise ConfigError(f"{path}: unknown key '{dotted}' (known: {', '.join(sorted(known))})")
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else key
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation):
            kwargs[key] = _build(annotation, value, dotted, path)
            continue
        if not value_has_type(value, annotation):
            raise ConfigError(f"{path}: key '{dotted}' must be {_type_name(annotation)}, "
                              f"got {type(value).__name__} {value!r}")
        kwargs[key] = float(value) if annotation is float else value
    obj = cls(**kwargs)
    problems = getattr(obj, "problems", None)
    if problems is not None:
        for key, message in problems():
            dotted = f"{where}.{key}" if where else key
            raise ConfigError(f"{path}: key '{dotted}': {message}")
    return obj


def parse_preset(data: object, path: Path | str = "<preset>") -> Preset:
    """Build a `Preset` from parsed YAML, rejecting unknown keys, wrong types and impossible values."""
    return _build(Preset, data, "", Path(path))


def load_preset(name_or_path: str | Path) -> Preset:
    """Load `hparams/NAME.yaml` (a bare name) or a YAML file path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = HPARAMS_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in HPARAMS_DIR.glob("*.yaml")))
        raise ConfigError(f"{path}: no such preset (available: {available})")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_preset(data, path)

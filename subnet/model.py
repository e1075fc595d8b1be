"""The shared language model: a Hugging Face causal LM built from a preset, and its state hash."""
from __future__ import annotations

import hashlib

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from subnet.config import ModelConfig


def llama_config(cfg: ModelConfig) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.seq_len,
        rope_theta=cfg.rope_theta,
        tie_word_embeddings=cfg.tie_embeddings,
        attn_implementation="sdpa",
    )


def build_model(cfg: ModelConfig, seed: int) -> LlamaForCausalLM:
    """A freshly initialised model; the same (cfg, seed) gives bit-identical weights on any machine."""
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(llama_config(cfg))
    finally:
        torch.random.set_rng_state(generator_state)
    return model


Params = dict[str, torch.Tensor]


def get_params(model: torch.nn.Module) -> Params:
    """The model's parameters as name -> tensor: detached float32 CPU copies, safe to keep."""
    return {name: p.detach().to("cpu", torch.float32, copy=True) for name, p in model.named_parameters()}


@torch.no_grad()
def set_params(model: torch.nn.Module, params: Params) -> None:
    """Copy ``params`` into the model in place (to its device and dtype); every name must match."""
    own = dict(model.named_parameters())
    if set(own) != set(params):
        missing, extra = sorted(set(own) - set(params)), sorted(set(params) - set(own))
        raise KeyError(f"parameter names differ: missing {missing[:3]}, unexpected {extra[:3]}")
    for name, p in own.items():
        p.copy_(params[name])


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes of the preset's model, without allocating it."""
    with torch.device("meta"):
        model = LlamaForCausalLM(llama_config(cfg))
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


def count_params(cfg: ModelConfig) -> int:
    total = 0
    for shape in param_shapes(cfg).values():
        n = 1
        for d in shape:
            n *= d
        total += n
    return total


def model_hash(params: dict[str, torch.Tensor] | torch.nn.Module) -> str:
    """sha256 over parameters in sorted-name order (name, dtype, shape, raw bytes), for sync checks."""
    if isinstance(params, torch.nn.Module):
        params = dict(params.named_parameters())
    digest = hashlib.sha256()
    for name in sorted(params):
        tensor = params[name].detach().to("cpu").contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(repr(tuple(tensor.shape)).encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def lm_loss(model: LlamaForCausalLM, tokens: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of a (batch, seq_len + 1) block of token ids."""
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    logits = model(input_ids=inputs).logits
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))

import torch
from transformers import AutoModelForCausalLM

from subnet.model import build_model, lm_loss, model_hash, param_shapes
from subnet.train import lr_at


def test_seeded_init_and_hash(tiny_preset):
    a = build_model(tiny_preset.model, 1)
    b = build_model(tiny_preset.model, 1)
    c = build_model(tiny_preset.model, 2)
    assert model_hash(a) == model_hash(b) != model_hash(c)
    with torch.no_grad():
        next(b.parameters())[0, 0] += 1e-6
    assert model_hash(a) != model_hash(b)


def test_build_does_not_disturb_global_rng(tiny_preset):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    build_model(tiny_preset.model, 1)
    assert torch.equal(torch.rand(3), expected)


def test_param_shapes_match_model(tiny_preset):
    model = build_model(tiny_preset.model, 0)
    assert param_shapes(tiny_preset.model) == {n: tuple(p.shape) for n, p in model.named_parameters()}


def test_checkpoint_loads_with_from_pretrained(tiny_preset, tmp_path):
    model = build_model(tiny_preset.model, 3)
    model.save_pretrained(tmp_path, safe_serialization=True)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "config.json").is_file()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert model_hash(loaded) == model_hash(model)
    tokens = torch.randint(0, tiny_preset.model.vocab_size, (2, 9))
    torch.testing.assert_close(lm_loss(loaded, tokens), lm_loss(model, tokens))


def test_lr_schedule(tiny_preset):
    cfg = tiny_preset.train
    assert lr_at(0, cfg) == cfg.lr / cfg.warmup_steps
    assert abs(lr_at(cfg.warmup_steps - 1, cfg) - cfg.lr) < 1e-12
    assert abs(lr_at(cfg.cosine_steps, cfg) - cfg.lr * cfg.min_lr_ratio) < 1e-12
    mid = lr_at((cfg.warmup_steps + cfg.cosine_steps) // 2, cfg)
    assert abs(mid - cfg.lr * (cfg.min_lr_ratio + 1) / 2) < cfg.lr * 0.01
    values = [lr_at(s, cfg) for s in range(cfg.warmup_steps, cfg.cosine_steps)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # monotone decay after warm-up

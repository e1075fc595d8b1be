import pytest
import yaml

from subnet.config import HPARAMS_DIR, ConfigError, load_preset
from subnet.model import count_params


def write(tmp_path, data, name="p.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def base():
    return yaml.safe_load((HPARAMS_DIR / "tiny.yaml").read_text())


def test_presets_load_with_expected_sizes():
    sizes = {p.stem: count_params(load_preset(p.stem).model) for p in HPARAMS_DIR.glob("*.yaml")}
    assert sizes["tiny"] < 1_000_000
    assert 2_000_000 <= sizes["small"] <= 10_000_000
    assert 130_000_000 <= sizes["base150m"] <= 170_000_000


def test_unknown_key_names_key_and_file(tmp_path):
    data = base()
    data["train"]["learning_rate"] = 0.1
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_preset(path)
    assert "train.learning_rate" in str(err.value) and str(path) in str(err.value)


def test_wrong_type_names_key(tmp_path):
    data = base()
    data["model"]["hidden_size"] = "64"
    with pytest.raises(ConfigError, match="model.hidden_size.*must be int"):
        load_preset(write(tmp_path, data))


def test_bool_is_not_an_int(tmp_path):
    data = base()
    data["train"]["inner_steps"] = True
    with pytest.raises(ConfigError, match="train.inner_steps"):
        load_preset(write(tmp_path, data))


def test_topk_larger_than_chunk_is_impossible(tmp_path):
    data = base()
    data["compression"]["tile"] = 8
    data["compression"]["topk"] = 65
    with pytest.raises(ConfigError, match="compression.topk.*larger than the chunk"):
        load_preset(write(tmp_path, data))


@pytest.mark.parametrize("section,key,value,pattern", [
    ("model", "hidden_size", 62, "not divisible by num_heads"),
    ("train", "beta2", 1.0, "train.beta2"),
    ("compression", "value_bits", 0, "compression.value_bits"),
    ("outer", "lr", -1.0, "outer.lr"),
])
def test_impossible_values(tmp_path, section, key, value, pattern):
    data = base()
    data[section][key] = value
    with pytest.raises(ConfigError, match=pattern):
        load_preset(write(tmp_path, data))


def test_int_accepted_for_float(tmp_path):
    data = base()
    data["outer"]["lr"] = 1
    assert load_preset(write(tmp_path, data)).outer.lr == 1.0


def test_missing_preset_lists_available():
    with pytest.raises(ConfigError, match="available: .*tiny"):
        load_preset("no-such-preset")


def test_not_a_mapping(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_preset(path)

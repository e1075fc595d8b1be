from pathlib import Path

import pytest

from subnet.config import load_preset
from subnet.data import TokenDataset, prepare_dataset


@pytest.fixture(scope="session")
def tiny_preset():
    return load_preset("tiny")


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> Path:
    """The bundled corpus prepared once for the tiny preset's vocabulary."""
    out = tmp_path_factory.mktemp("tiny-data")
    prepare_dataset(out, vocab_size=load_preset("tiny").model.vocab_size)
    return out


@pytest.fixture(scope="session")
def tiny_train(tiny_data_dir, tiny_preset) -> TokenDataset:
    return TokenDataset(tiny_data_dir, "train", tiny_preset.model.seq_len)


@pytest.fixture(scope="session")
def tiny_val(tiny_data_dir, tiny_preset) -> TokenDataset:
    return TokenDataset(tiny_data_dir, "val", tiny_preset.model.seq_len)

import re
from pathlib import Path

import pytest

from subnet.config import load_preset
from subnet.data import TokenDataset, prepare_dataset
from subnet.errors import InputRejected

_REASON = re.compile(r"[a-z][a-z0-9_]*")


@pytest.fixture(autouse=True)
def refusals_name_their_problem(monkeypatch):
    """Every refusal the suite provokes, anywhere, must carry a reason code and a message for people
    (the project's rule: errors name the problem). A refusal raised without either fails the test
    at the raise, whatever the test itself asserts about it."""
    original = InputRejected.__init__

    def checked(self, reason, message):
        assert isinstance(reason, str) and _REASON.fullmatch(reason), f"refusal with reason code {reason!r}"
        assert isinstance(message, str) and message.strip(), f"refusal {reason!r} without a message: {message!r}"
        original(self, reason, message)

    monkeypatch.setattr(InputRejected, "__init__", checked)


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

import json

import pytest

from subnet.config import load_preset
from validator.gauntlet import Evaluation
from validator.ratings import Ratings
from validator.state import load_validator_state, save_validator_state


@pytest.fixture
def protocol():
    return load_preset("tiny").protocol


def test_state_round_trip(tmp_path, protocol):
    ratings = Ratings(protocol)
    ratings.sync_hotkeys({1: "a", 2: "b", 3: "c"})
    ratings.record_window(4, {1: "ok", 2: "ok", 3: "missing"},
                          [Evaluation(1, "a", 4.0, 3.0, 4.0, 3.5), Evaluation(2, "b", 4.0, 4.1, 4.0, 4.2)])
    path = tmp_path / "validator.json"
    extra = {"last_window": 4, "weights_window": 2}
    save_validator_state(path, ratings, extra)
    loaded, loaded_extra = load_validator_state(path, protocol)
    assert loaded_extra == extra
    assert loaded.records == ratings.records
    assert loaded.final_scores() == ratings.final_scores()
    assert [p.name for p in tmp_path.iterdir()] == ["validator.json"]  # no temp files left


def test_missing_file_is_fresh_state(tmp_path, protocol):
    ratings, extra = load_validator_state(tmp_path / "none.json", protocol)
    assert ratings.records == {} and extra == {}


@pytest.mark.parametrize("text", ["{not json", "[]", '{"format": "x"}', "NaN",
                                  '{"format": "tessera-validator-state-v1", "extra": {}, "ratings": {"format": "tessera-ratings-v1", "records": [{"uid": 1}]}}'])
def test_corrupt_file_names_the_path(tmp_path, protocol, text):
    path = tmp_path / "validator.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=str(path)):
        load_validator_state(path, protocol)


def test_nan_in_extra_is_refused_at_save(tmp_path, protocol):
    with pytest.raises(ValueError):
        save_validator_state(tmp_path / "v.json", Ratings(protocol), {"x": float("nan")})
    assert not (tmp_path / "v.json").exists()
    save_validator_state(tmp_path / "v.json", Ratings(protocol), {"x": 1})
    assert json.loads((tmp_path / "v.json").read_text())["extra"] == {"x": 1}

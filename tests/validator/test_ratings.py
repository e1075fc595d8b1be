import math
import dataclasses

import pytest

from subnet.config import ProtocolConfig, load_preset
from validator.gauntlet import Evaluation
from validator.ratings import Ratings

HOTKEYS = {uid: f"hk{uid}" for uid in range(1, 7)}


@pytest.fixture
def protocol() -> ProtocolConfig:
    return load_preset("tiny").protocol


def evaluation(uid: int, score: float, proof: bool = True, hotkey: str | None = None) -> Evaluation:
    """An evaluation with random-data relative improvement `score` and the given proof bit."""
    own = score + 0.01 if proof else score - 0.01
    return Evaluation(uid=uid, hotkey=hotkey or HOTKEYS[uid], own_before=4.0, own_after=4.0 * (1 - own),
                      random_before=4.0, random_after=4.0 * (1 - score))


def make(protocol, uids=(1, 2, 3)) -> Ratings:
    ratings = Ratings(protocol)
    ratings.sync_hotkeys({uid: HOTKEYS[uid] for uid in uids})
    return ratings


def play(ratings: Ratings, window: int, scores: dict[int, float], verdicts: dict[int, str] | None = None):
    verdicts = dict(verdicts or {})
    verdicts.update({uid: "ok" for uid in scores})
    ratings.record_window(window, verdicts, [evaluation(uid, s) for uid, s in scores.items()])


def test_fresh_record_uses_openskill_defaults(protocol):
    ratings = make(protocol)
    record = ratings.records[1]
    assert (record.mu, record.sigma) == (pytest.approx(25.0), pytest.approx(25.0 / 3))
    assert ratings.ordinal(1) == pytest.approx(0.0)
    assert ratings.model.beta == protocol.openskill_beta and ratings.model.tau == protocol.openskill_tau


def test_ranking_order_moves_mu(protocol):
    ratings = make(protocol)
    play(ratings, 1, {1: 0.3, 2: 0.2, 3: 0.1})
    mu = {uid: ratings.records[uid].mu for uid in (1, 2, 3)}
    assert mu[1] > 25.0 > mu[3]
    assert mu[1] > mu[2] > mu[3]
    assert ratings.ordinal(1) > ratings.ordinal(2) > ratings.ordinal(3)
    # The reverse result reverses the order of the changes.
    other = make(protocol)
    play(other, 1, {1: 0.1, 2: 0.2, 3: 0.3})
    assert other.records[3].mu > 25.0 > other.records[1].mu
    assert other.records[3].mu == pytest.approx(mu[1])


def test_equal_scores_tie(protocol):
    ratings = make(protocol)
    play(ratings, 1, {1: 0.2, 2: 0.2, 3: 0.1})
    assert ratings.records[1].mu == pytest.approx(ratings.records[2].mu)
    assert ratings.records[1].mu > ratings.records[3].mu


def test_evaluation_updates_counters(protocol):
    ratings = make(protocol)
    ratings.record_window(5, {1: "ok", 2: "ok", 3: "ok"}, [evaluation(1, 0.2, proof=True), evaluation(2, -0.1, proof=False)])
    one, two, three = (ratings.records[uid] for uid in (1, 2, 3))
    assert (one.evaluations, one.last_evaluated, one.last_score, one.pot_average) == (1, 5, pytest.approx(0.2), 1.0)
    # The proof average starts from 1.0: one failed proof moves it down by pot_ema, not to zero.
    assert (two.pot_average, two.consecutive_negative) == (pytest.approx(1.0 - protocol.pot_ema), 1)
    # A valid upload that was not evaluated counts as activity, not as an evaluation.
    assert (three.evaluations, three.last_upload, three.last_evaluated, three.mu) == (0, 5, None, pytest.approx(25.0))


def test_missing_upload_penalty_last_place_and_recovery(protocol):
    ratings = make(protocol)
    play(ratings, 1, {1: 0.2, 2: 0.1, 3: 0.15})
    mu_before = ratings.records[1].mu
    play(ratings, 2, {2: 0.1, 3: 0.15}, {1: "missing"})
    record = ratings.records[1]
    assert record.penalty == pytest.approx(protocol.missing_penalty * protocol.inactivity_decay)
    assert record.inactive_windows == 1
    assert record.mu < mu_before  # ranked last in the window's match
    play(ratings, 3, {2: 0.1, 3: 0.15}, {1: "copied"})
    # A rejected upload is penalised but is not inactivity.
    assert record.penalty == pytest.approx(protocol.missing_penalty ** 2 * protocol.inactivity_decay)
    assert record.inactive_windows == 1
    assert record.last_verdict == "copied"
    ratings.record_window(4, {1: "ok", 2: "ok", 3: "ok"}, [])
    assert (record.penalty, record.inactive_windows, record.last_upload) == (1.0, 0, 4)


def test_penalty_scales_final_score(protocol):
    ratings = make(protocol)
    for window in range(1, 4):
        play(ratings, window, {1: 0.3, 2: 0.2, 3: 0.1})
    full = ratings.final_scores()[1]
    assert full > 0
    play(ratings, 4, {2: 0.2, 3: 0.1}, {1: "late"})
    record = ratings.records[1]
    assert ratings.final_scores()[1] == pytest.approx(max(0.0, record.ordinal) * record.pot_average
                                                      * protocol.missing_penalty)


def test_inactivity_resets_after_configured_windows(protocol):
    ratings = make(protocol)
    play(ratings, 1, {1: 0.3, 2: 0.2, 3: 0.1})
    for window in range(2, 2 + protocol.inactivity_reset_windows - 1):
        play(ratings, window, {2: 0.2, 3: 0.1}, {1: "missing"})
        assert ratings.records[1].evaluations == 1
    play(ratings, 10, {2: 0.2, 3: 0.1}, {1: "missing"})
    record = ratings.records[1]
    assert (record.evaluations, record.inactive_windows, record.penalty, record.last_upload) == (0, 0, 1.0, None)
    assert (record.mu, record.sigma) == (pytest.approx(25.0), pytest.approx(25.0 / 3))
    # A reset (never seen) miner that stays away is neither penalised nor dragged into matches.
    play(ratings, 11, {2: 0.2, 3: 0.1}, {1: "missing"})
    assert (record.penalty, record.mu) == (1.0, pytest.approx(25.0))


def test_never_seen_miner_is_not_in_the_match(protocol):
    ratings = make(protocol)
    play(ratings, 1, {1: 0.3, 2: 0.2}, {3: "missing"})
    assert ratings.records[3].mu == pytest.approx(25.0)
    assert ratings.records[3].penalty == 1.0
    assert ratings.records[3].last_verdict == "missing"


def test_hotkey_change_resets_and_deregistered_uids_go(protocol):
    ratings = make(protocol)
    play(ratings, 1, {1: 0.3, 2: 0.2, 3: 0.1})
    rated_mu = ratings.records[2].mu
    ratings.sync_hotkeys({1: HOTKEYS[1], 2: "new-owner"})
    assert 3 not in ratings.records
    assert ratings.records[2].hotkey == "new-owner"
    assert (ratings.records[2].mu, ratings.records[2].evaluations) == (pytest.approx(25.0), 0)
    assert ratings.records[1].evaluations == 1
    assert rated_mu != pytest.approx(25.0)
    # An evaluation made for the previous owner is not credited to the new one.
    ratings.record_window(2, {1: "ok", 2: "ok"}, [evaluation(1, 0.1), evaluation(2, 0.5, hotkey=HOTKEYS[2])])
    assert ratings.records[2].evaluations == 0


def test_negative_streak_excludes_then_positive_clears(protocol):
    ratings = make(protocol)
    for window in range(1, protocol.negative_exclusion + 1):
        play(ratings, window, {1: 0.3, 2: -0.05, 3: 0.1})
    assert ratings.records[2].consecutive_negative == protocol.negative_exclusion
    assert ratings.final_scores()[2] == 0.0
    play(ratings, 20, {1: 0.3, 2: 0.0, 3: 0.1})
    assert ratings.records[2].consecutive_negative == 0


def test_window_with_negative_fifth_best_does_not_count_negatives(protocol):
    ratings = make(protocol, uids=range(1, 7))
    play(ratings, 1, {1: 0.1, 2: 0.05, 3: 0.01, 4: -0.01, 5: -0.02, 6: -0.03})
    assert ratings.records[5].consecutive_negative == 0  # 5th best negative: guard
    play(ratings, 2, {1: 0.1, 2: 0.05, 3: 0.01, 4: 0.01, 5: 0.02, 6: -0.03})
    assert ratings.records[6].consecutive_negative == 1  # 5th best positive: counts


def test_pot_gate_applies_after_warmup(protocol):
    ratings = make(protocol)
    lazy = []
    # Failed proofs until the average, from 1.0, falls below the threshold (and past the warm-up).
    failures = max(protocol.pot_warmup_windows,
                   math.ceil(math.log(protocol.pot_threshold) / math.log(1.0 - protocol.pot_ema)))
    for window in range(1, failures + 1):
        ratings.record_window(window, {1: "ok", 2: "ok"}, [evaluation(1, 0.3, proof=False), evaluation(2, 0.1)])
        lazy.append(ratings.final_scores()[1])
    assert lazy[0] > 0  # warm-up, and one failure is not a zero
    assert lazy[-1] == 0.0  # enough failed proofs zero the best scorer
    assert ratings.records[1].pot_average < protocol.pot_threshold and ratings.records[1].ordinal > 0


def test_evaluation_inconsistent_with_verdicts_is_refused(protocol):
    ratings = make(protocol)
    with pytest.raises(ValueError, match="verdict"):
        ratings.record_window(1, {1: "late"}, [evaluation(1, 0.1)])
    with pytest.raises(ValueError, match="twice"):
        ratings.record_window(1, {1: "ok"}, [evaluation(1, 0.1), evaluation(1, 0.2)])


def test_json_round_trip_and_malformed_documents(protocol):
    ratings = make(protocol)
    play(ratings, 1, {1: 0.3, 2: 0.2}, {3: "missing"})
    doc = ratings.to_json()
    again = Ratings.from_json(doc, protocol)
    assert again.records == ratings.records
    assert again.final_scores() == ratings.final_scores()
    bad = dict(doc, records=[dict(doc["records"][0], mu="25")] + doc["records"][1:])
    with pytest.raises(ValueError, match=r"records\[0\]\.mu"):
        Ratings.from_json(bad, protocol)
    missing = dict(doc, records=[{k: v for k, v in doc["records"][1].items() if k != "penalty"}])
    with pytest.raises(ValueError, match=r"records\[0\]\.penalty"):
        Ratings.from_json(missing, protocol)
    with pytest.raises(ValueError, match=r"records\[1\]\.uid"):
        Ratings.from_json(dict(doc, records=[doc["records"][0], doc["records"][0]]), protocol)
    with pytest.raises(ValueError, match="format"):
        Ratings.from_json(dict(doc, format="other"), protocol)
    with pytest.raises(ValueError, match="evaluations"):
        Ratings.from_json(dict(doc, records=[dict(doc["records"][0], evaluations=True)]), protocol)


def test_protocol_values_are_read_not_assumed(protocol):
    harsh = dataclasses.replace(protocol, missing_penalty=0.5, inactivity_decay=1.0)
    ratings = make(harsh)
    play(ratings, 1, {1: 0.3, 2: 0.2})
    play(ratings, 2, {2: 0.2}, {1: "missing"})
    assert ratings.records[1].penalty == pytest.approx(0.5)


def test_below_par_miner_earns_nothing_after_warmup_with_the_reason(protocol):
    # Three honest miners, one whose updates help a quarter as much (trained on an old model), and
    # two that hurt, so the weak one is mid-table and its rating alone would pay it.
    ratings = make(protocol, uids=(1, 2, 3, 4, 5, 6))
    finals = []
    for window in range(1, protocol.pot_warmup_windows + 12):
        play(ratings, window, {1: 0.010, 2: 0.009, 3: 0.011, 4: 0.0025, 5: -0.001, 6: -0.002})
        finals.append(ratings.final_scores())
    assert finals[-1][4] == 0.0 and ratings.records[4].ordinal > 0
    assert ratings.zero_reason(4) == "below_par"
    assert all(finals[-1][uid] > 0 for uid in (1, 2, 3)) and ratings.zero_reason(1) is None
    assert ratings.records[4].par_average < protocol.par_threshold <= ratings.records[1].par_average
    # Without the at-par gate the same history pays it.
    lenient = make(dataclasses.replace(protocol, par_ratio=0.1), uids=(1, 2, 3, 4, 5, 6))
    for window in range(1, protocol.pot_warmup_windows + 12):
        play(lenient, window, {1: 0.010, 2: 0.009, 3: 0.011, 4: 0.0025, 5: -0.001, 6: -0.002})
    assert lenient.final_score(4) > 0


def test_occasional_below_par_window_does_not_zero_an_honest_miner(protocol):
    ratings = make(protocol, uids=(1, 2, 3))
    for window in range(1, 12):
        low = 0.002 if window % 4 == 0 else 0.010   # one window in four is a bad batch for uid 1
        play(ratings, window, {1: low, 2: 0.009, 3: 0.011})
    assert ratings.final_score(1) > 0 and ratings.records[1].par_average >= protocol.par_threshold


def test_par_needs_three_evaluated_miners(protocol):
    ratings = make(protocol, uids=(1, 2))
    for window in range(1, protocol.pot_warmup_windows + 6):
        play(ratings, window, {1: 0.010, 2: 0.001})
    assert ratings.records[2].par_average is None and ratings.zero_reason(2) != "below_par"


def test_zero_reasons(protocol):
    ratings = make(protocol, uids=(1, 2, 3))
    assert ratings.zero_reason(9) == "not_rated"
    for window in range(1, protocol.pot_warmup_windows + 3):
        ratings.record_window(window, {1: "ok", 2: "ok", 3: "ok"},
                              [evaluation(1, 0.01), evaluation(2, 0.3, proof=False), evaluation(3, -0.01)])
    assert ratings.zero_reason(2) == "no_proof_of_training"
    assert ratings.zero_reason(3) == "negative_streak"
    assert ratings.zero_reason(1) is None
    fresh = make(protocol, uids=(1, 2))
    assert fresh.zero_reason(1) == "low_rating"  # a record, never evaluated: ordinal 0


def test_state_written_before_par_existed_still_loads(protocol):
    ratings = make(protocol)
    play(ratings, 1, {1: 0.3, 2: 0.2, 3: 0.1})
    doc = ratings.to_json()
    old = dict(doc, records=[{k: v for k, v in row.items() if k != "par_average"} for row in doc["records"]])
    again = Ratings.from_json(old, protocol)
    assert all(record.par_average is None for record in again.records.values())
    assert again.records[1].mu == ratings.records[1].mu


def test_a_newcomer_is_not_judged_for_par_while_its_error_feedback_fills(protocol):
    ratings = make(protocol, uids=(1, 2, 3, 4))
    warmup = protocol.par_warmup_evaluations
    # Measured shape on tiny: a newcomer's score climbs from ~0.2x to ~1x the median over ~6 windows.
    ramp = [0.2, 0.4, 0.5, 0.6, 0.7, 0.8] + [1.0] * 6
    for window, share in enumerate(ramp[:warmup], start=1):
        play(ratings, window, {1: 0.010, 2: 0.009, 3: 0.011, 4: 0.010 * share})
    assert ratings.records[4].par_average is None
    for window, share in enumerate(ramp[warmup:], start=warmup + 1):
        play(ratings, window, {1: 0.010, 2: 0.009, 3: 0.011, 4: 0.010 * share})
    assert ratings.records[4].par_average == 1.0 and ratings.zero_reason(4) != "below_par"
    # The same miner judged from its first evaluation would have been marked down.
    eager = make(dataclasses.replace(protocol, par_warmup_evaluations=0), uids=(1, 2, 3, 4))
    for window, share in enumerate(ramp[:3], start=1):
        play(eager, window, {1: 0.010, 2: 0.009, 3: 0.011, 4: 0.010 * share})
    assert eager.records[4].par_average < 1.0

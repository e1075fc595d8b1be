import math

import pytest

from validator.gauntlet import Evaluation, par_results, pot_gate, relative_improvement, update_pot_average


def test_relative_improvement_formula_and_degenerate_inputs():
    assert relative_improvement(4.0, 3.0) == pytest.approx(0.25)
    assert relative_improvement(4.0, 5.0) == pytest.approx(-0.25)
    assert relative_improvement(0.0, 1.0) == 0.0
    assert relative_improvement(-1.0, 1.0) == 0.0
    assert relative_improvement(math.nan, 1.0) == 0.0
    assert relative_improvement(math.inf, 1.0) == 0.0
    # An update that blows the model up gets the worst score, not a neutral one.
    assert relative_improvement(4.0, math.nan) == -1.0
    assert relative_improvement(4.0, math.inf) == -1.0
    assert relative_improvement(4.0, 100.0) == -1.0


def test_score_is_random_data_improvement_and_proof_compares_own_to_random():
    trained = Evaluation(uid=1, hotkey="h", own_before=4.0, own_after=3.0, random_before=4.0, random_after=3.6)
    assert trained.score == pytest.approx(0.1)
    assert trained.proof == 1.0
    lazy = Evaluation(uid=2, hotkey="h", own_before=4.0, own_after=3.8, random_before=4.0, random_after=3.6)
    assert lazy.score == pytest.approx(0.1)
    assert lazy.proof == 0.0
    equal = Evaluation(uid=3, hotkey="h", own_before=4.0, own_after=3.6, random_before=4.0, random_after=3.6)
    assert equal.proof == 0.0  # must beat, not match


def test_pot_average_starts_at_first_proof_then_moves_by_ema():
    assert update_pot_average(None, 0.0, 0.2) == 0.0
    assert update_pot_average(None, 1.0, 0.2) == 1.0
    assert update_pot_average(1.0, 0.0, 0.2) == pytest.approx(0.8)
    assert update_pot_average(0.5, 1.0, 0.1) == pytest.approx(0.55)


def test_pot_gate_warmup_then_threshold():
    assert pot_gate(0.0, evaluations=1, warmup=2, threshold=0.1) == 1.0
    assert pot_gate(None, evaluations=0, warmup=2, threshold=0.1) == 1.0
    assert pot_gate(0.05, evaluations=2, warmup=2, threshold=0.1) == 0.0
    assert pot_gate(0.1, evaluations=2, warmup=2, threshold=0.1) == 0.1
    assert pot_gate(0.7, evaluations=50, warmup=2, threshold=0.1) == 0.7
    assert pot_gate(None, evaluations=0, warmup=0, threshold=0.1) == 0.0


def test_par_compares_each_score_with_the_window_median():
    # Median of (0.01, 0.009, 0.0026) is 0.009: half of it is 0.0045.
    assert par_results({1: 0.01, 2: 0.009, 3: 0.0026}, 0.5) == {1: 1.0, 2: 1.0, 3: 0.0}
    # Even count: the mean of the middle two (0.008) sets the bar 0.004.
    assert par_results({1: 0.01, 2: 0.009, 3: 0.007, 4: 0.0041}, 0.5)[4] == 1.0
    assert par_results({1: 0.01, 2: 0.009, 3: 0.007, 4: 0.0039}, 0.5)[4] == 0.0
    # The ratio is read: at 0.3 the low scorer is at par.
    assert par_results({1: 0.01, 2: 0.009, 3: 0.0028}, 0.3)[3] == 1.0


def test_par_gives_no_judgement_without_a_reference():
    assert par_results({1: 0.01, 2: 0.001}, 0.5) == {}            # two scores: no median to trust
    assert par_results({1: 0.01, 2: -0.001, 3: -0.002}, 0.5) == {}  # typical update hurts: no bar
    assert par_results({1: 0.0, 2: 0.0, 3: 0.0}, 0.5) == {}

"""OpenSkill (PlackettLuce) ratings of miners, penalties, and the final score that becomes weights.

State is one `MinerRecord` per uid, tied to the hotkey behind the uid: a uid that changes hands
starts fresh, because the rating was earned by someone else. Each window is one match: evaluated
miners ranked by score, previously seen miners whose upload was missing or rejected tied last
(Templar's -99 match score). Final score = max(0, ordinal) x proof-of-training gate x at-par gate
x penalty; `zero_reason` says which of them made it 0 (published in scores-w).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from openskill.models import PlackettLuce

from subnet.config import ProtocolConfig
from validator.gauntlet import Evaluation, par_results, pot_gate, update_pot_average

OK = "ok"
MISSING = "missing"
STATE_FORMAT = "tessera-ratings-v1"
ORDINAL_Z = 3.0
# Templar skips its negative-score penalty in a window whose 5th-best score is negative (tplr #641):
# when almost nobody improves the model, the window (data, model state) is to blame, not the miners.
NEGATIVE_GUARD_RANK = 5


@dataclass
class MinerRecord:
    uid: int
    hotkey: str
    mu: float
    sigma: float
    evaluations: int = 0
    pot_average: float | None = None
    par_average: float | None = None      # EMA of "score at least par_ratio x the window's median"
    last_evaluated: int | None = None     # window
    last_upload: int | None = None        # window of the last valid upload
    inactive_windows: int = 0             # consecutive windows without any upload
    consecutive_negative: int = 0         # consecutive evaluations with a negative score
    penalty: float = 1.0                  # score multiplier; 1.0 = none
    last_score: float | None = None
    last_verdict: str = ""

    @property
    def seen(self) -> bool:
        """Has made a valid upload since its record was (re)started."""
        return self.last_upload is not None

    @property
    def ordinal(self) -> float:
        return self.mu - ORDINAL_Z * self.sigma


# JSON field checks: (accepts None, allowed types). bool is excluded from int explicitly.
_FIELD_TYPES: dict[str, tuple[bool, tuple[type, ...]]] = {
    "uid": (False, (int,)), "hotkey": (False, (str,)), "mu": (False, (int, float)),
    "sigma": (False, (int, float)), "evaluations": (False, (int,)), "pot_average": (True, (int, float)),
    "par_average": (True, (int, float)),
    "last_evaluated": (True, (int,)), "last_upload": (True, (int,)), "inactive_windows": (False, (int,)),
    "consecutive_negative": (False, (int,)), "penalty": (False, (int, float)),
    "last_score": (True, (int, float)), "last_verdict": (False, (str,)),
}
_FLOAT_FIELDS = {"mu", "sigma", "pot_average", "par_average", "penalty", "last_score"}
# Fields added after the state format's first release: a state file written before them loads with
# the field's default instead of failing a validator's restart.
_ADDED_FIELDS = {"par_average": None}
_NON_NEGATIVE = {"uid", "evaluations", "inactive_windows", "consecutive_negative", "sigma", "penalty"}


class Ratings:
    def __init__(self, protocol: ProtocolConfig):
        self.protocol = protocol
        self.model = PlackettLuce(beta=protocol.openskill_beta, tau=protocol.openskill_tau)
        self.records: dict[int, MinerRecord] = {}

    def fresh(self, uid: int, hotkey: str) -> MinerRecord:
        return MinerRecord(uid=uid, hotkey=hotkey, mu=self.model.mu, sigma=self.model.sigma)

    def sync_hotkeys(self, hotkeys: dict[int, str]) -> None:
        """Match the records to the metagraph: new or re-registered uids start fresh, gone uids go."""
        for uid in list(self.records):
            if uid not in hotkeys:
                del self.records[uid]
        for uid, hotkey in hotkeys.items():
            record = self.records.get(uid)
            if record is None or record.hotkey != hotkey:
                self.records[uid] = self.fresh(uid, hotkey)

    def ordinal(self, uid: int) -> float:
        return self.records[uid].ordinal

    # -- one window ---------------------------------------------------------------------------

    def record_window(self, window: int, verdicts: dict[int, str], evaluations: list[Evaluation]) -> None:
        """Apply one window's outcome. `verdicts` holds every registered miner: "ok" for a valid
        upload, else the rejection reason ("missing" when nothing was uploaded). Call
        `sync_hotkeys` first; verdicts for uids without a record are ignored (hotkey unknown)."""
        by_uid = self._check_evaluations(verdicts, evaluations)
        # An evaluation of a uid whose hotkey changed meanwhile is about the previous owner: drop it.
        for uid, evaluation in list(by_uid.items()):
            record = self.records.get(uid)
            if record is None:
                self.records[uid] = self.fresh(uid, evaluation.hotkey)
            elif record.hotkey != evaluation.hotkey:
                del by_uid[uid]
        failed = sorted(uid for uid, verdict in verdicts.items()
                        if verdict != OK and uid in self.records and self.records[uid].seen)
        self._play_match(by_uid, failed)
        guard = self._negative_guard(by_uid)
        par = par_results({uid: e.score for uid, e in by_uid.items()}, self.protocol.par_ratio)
        for uid, evaluation in by_uid.items():
            self._apply_evaluation(self.records[uid], window, evaluation, guard, par.get(uid))
        for uid, verdict in verdicts.items():
            record = self.records.get(uid)
            if record is not None:
                self._apply_verdict(record, window, verdict)

    @staticmethod
    def _check_evaluations(verdicts: dict[int, str], evaluations: list[Evaluation]) -> dict[int, Evaluation]:
        by_uid: dict[int, Evaluation] = {}
        for evaluation in evaluations:
            if evaluation.uid in by_uid:
                raise ValueError(f"uid {evaluation.uid} is evaluated twice in one window")
            if verdicts.get(evaluation.uid) != OK:
                raise ValueError(f"uid {evaluation.uid} is evaluated but its verdict is "
                                 f"{verdicts.get(evaluation.uid)!r}, not {OK!r}")
            by_uid[evaluation.uid] = evaluation
        return by_uid

    def _play_match(self, evaluated: dict[int, Evaluation], failed: list[int]) -> None:
        """One PlackettLuce match: evaluated miners by score (equal scores tie), failed ones tied last."""
        players = sorted(evaluated, key=lambda uid: (-evaluated[uid].score, uid))
        ranks: list[float] = []
        for position, uid in enumerate(players):
            tied = position > 0 and evaluated[players[position - 1]].score == evaluated[uid].score
            ranks.append(ranks[-1] if tied else float(position))
        order = list(players)
        players.extend(failed)
        ranks.extend([float(len(order))] * len(failed))
        if len(players) < 2:
            return
        teams = [[self.model.rating(mu=self.records[uid].mu, sigma=self.records[uid].sigma)] for uid in players]
        for uid, (rated,) in zip(players, self.model.rate(teams, ranks=ranks)):
            self.records[uid].mu = float(rated.mu)
            self.records[uid].sigma = float(rated.sigma)

    @staticmethod
    def _negative_guard(evaluated: dict[int, Evaluation]) -> bool:
        """True when this window's negative scores should not count against miners (tplr #641)."""
        scores = sorted((e.score for e in evaluated.values()), reverse=True)
        return len(scores) >= NEGATIVE_GUARD_RANK and scores[NEGATIVE_GUARD_RANK - 1] < 0

    def _apply_evaluation(self, record: MinerRecord, window: int, evaluation: Evaluation, guard: bool,
                          at_par: float | None) -> None:
        score = evaluation.score
        # Both averages start from the benefit of the doubt (1.0): an honest miner's first evaluation
        # fails the proof about one time in twelve (bench/scoring.py), and starting the average there
        # zeroed it for the next four evaluations (a dozen windows on a busy subnet).
        previous = 1.0 if record.pot_average is None else record.pot_average
        record.pot_average = update_pot_average(previous, evaluation.proof, self.protocol.pot_ema)
        if at_par is not None and record.evaluations >= self.protocol.par_warmup_evaluations:
            previous = 1.0 if record.par_average is None else record.par_average
            record.par_average = update_pot_average(previous, at_par, self.protocol.pot_ema)
        record.evaluations += 1
        record.last_evaluated = window
        record.last_score = score
        if score >= 0:
            record.consecutive_negative = 0
        elif not guard:
            record.consecutive_negative += 1

    def _apply_verdict(self, record: MinerRecord, window: int, verdict: str) -> None:
        record.last_verdict = verdict
        if verdict == OK:
            # The penalty punishes the current failure streak only; the rating keeps the long memory
            # (each failed window was a last place in the match), so one valid upload clears it and
            # a miner is not punished twice, for ever, for the same failure.
            record.last_upload = window
            record.inactive_windows = 0
            record.penalty = 1.0
            return
        if not record.seen:
            return  # never uploaded (or just reset): nothing to penalise, the score is 0 anyway
        record.penalty *= self.protocol.missing_penalty
        if verdict == MISSING:
            # Nothing uploaded at all: also decay, and forget the miner after a few such windows.
            record.penalty *= self.protocol.inactivity_decay
            record.inactive_windows += 1
            if record.inactive_windows >= self.protocol.inactivity_reset_windows:
                fresh = self.fresh(record.uid, record.hotkey)
                fresh.last_verdict = verdict
                self.records[record.uid] = fresh

    # -- scores -------------------------------------------------------------------------------

    def _gates(self, record: MinerRecord) -> tuple[float, float]:
        """(proof-of-training gate, at-par gate)."""
        p = self.protocol
        return (pot_gate(record.pot_average, record.evaluations, p.pot_warmup_windows, p.pot_threshold),
                # Not judged yet (in its warm-up, or never enough evaluated peers): nothing against it.
                1.0 if record.par_average is None else pot_gate(record.par_average, 1, 0, p.par_threshold))

    def final_score(self, uid: int) -> float:
        record = self.records[uid]
        if record.consecutive_negative >= self.protocol.negative_exclusion:
            return 0.0
        proof, par = self._gates(record)
        return max(0.0, record.ordinal) * proof * par * record.penalty

    def zero_reason(self, uid: int) -> str | None:
        """Why the final score is 0 (None when it is not): not_rated (no record), or the first of
        negative_streak, no_proof_of_training, below_par, low_rating (ordinal <= 0: it ranks low,
        or has too few matches yet)."""
        record = self.records.get(uid)
        if record is None:
            return "not_rated"
        if self.final_score(uid) > 0:
            return None
        proof, par = self._gates(record)
        if record.consecutive_negative >= self.protocol.negative_exclusion:
            return "negative_streak"
        if proof == 0:
            return "no_proof_of_training"
        if par == 0:
            return "below_par"
        return "low_rating"

    def final_scores(self) -> dict[int, float]:
        return {uid: self.final_score(uid) for uid in sorted(self.records)}

    # -- JSON ---------------------------------------------------------------------------------

    def to_json(self) -> dict:
        return {"format": STATE_FORMAT,
                "records": [asdict(self.records[uid]) for uid in sorted(self.records)]}

    @classmethod
    def from_json(cls, doc: object, protocol: ProtocolConfig) -> Ratings:
        """Rebuild from `to_json` output; a malformed document is a ValueError naming the field."""
        if not isinstance(doc, dict):
            raise ValueError(f"ratings: must be an object, got {type(doc).__name__}")
        if doc.get("format") != STATE_FORMAT:
            raise ValueError(f"ratings.format: expected {STATE_FORMAT!r}, got {doc.get('format')!r}")
        rows = doc.get("records")
        if not isinstance(rows, list):
            raise ValueError("ratings.records: must be a list")
        ratings = cls(protocol)
        for index, row in enumerate(rows):
            record = _record_from_json(row, f"ratings.records[{index}]")
            if record.uid in ratings.records:
                raise ValueError(f"ratings.records[{index}].uid: uid {record.uid} appears twice")
            ratings.records[record.uid] = record
        return ratings


def _record_from_json(row: object, where: str) -> MinerRecord:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: must be an object, got {type(row).__name__}")
    names = [f.name for f in fields(MinerRecord)]
    for key in row:
        if key not in _FIELD_TYPES:
            raise ValueError(f"{where}.{key}: unknown field")
    values = {}
    for name in names:
        if name not in row and name in _ADDED_FIELDS:
            values[name] = _ADDED_FIELDS[name]
            continue
        if name not in row:
            raise ValueError(f"{where}.{name}: missing")
        value = row[name]
        nullable, types = _FIELD_TYPES[name]
        if value is None:
            if not nullable:
                raise ValueError(f"{where}.{name}: must not be null")
            values[name] = None
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            raise ValueError(f"{where}.{name}: wrong type {type(value).__name__}")
        if name in _FLOAT_FIELDS:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{where}.{name}: must be finite")
        if name in _NON_NEGATIVE and value < 0:
            raise ValueError(f"{where}.{name}: must be >= 0")
        values[name] = value
    return MinerRecord(**values)

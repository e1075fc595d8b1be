"""The adversary kinds a miner can run (`behaviour:` in neurons.yaml) and their parameters, checked
without importing torch: `subnet up` refuses a bad behaviour before anything starts. What each
kind does is in miner/behaviours.py."""
from __future__ import annotations

import math

BEHAVIOURS = frozenset({"malformed", "noisy", "copier", "stale", "free_rider", "lazy", "late", "poisoner",
                        "sybil"})
MALFORMED_VARIANTS = ("random_bytes", "truncated", "non_finite", "huge_norm")


# Parameters each kind accepts, and whether it requires them.
_PARAMS = {"malformed": {"size": False, "variant": False}, "noisy": {"scale": False},
           "copier": {"victim": True, "noise": False}, "stale": {"lag": True}, "free_rider": {"scale": False},
           "lazy": {}, "late": {"delay_blocks": False}, "poisoner": {"scale": False}, "sybil": {"twin": True}}


def _finite_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _positive_number(value: object) -> bool:
    return _finite_number(value) and value > 0


def _positive_int(value: object, minimum: int = 1) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= minimum


def check_behaviour(kind: str, params: dict[str, object]) -> None:
    """Refuse an unknown kind, a missing or unknown parameter, or a value of the wrong type."""
    if kind not in BEHAVIOURS:
        raise ValueError(f"behaviour kind {kind!r} is not one of {', '.join(sorted(BEHAVIOURS))}")
    accepted = _PARAMS[kind]
    for name in params:
        if name not in accepted:
            known = ", ".join(sorted(accepted)) or "none"
            raise ValueError(f"behaviour {kind!r}: unknown parameter {name!r} (known: {known})")
    for name, required in accepted.items():
        if required and name not in params:
            raise ValueError(f"behaviour {kind!r}: missing parameter {name!r}")
    for name in ("victim", "twin"):
        if name in params and not (isinstance(params[name], str) and params[name]):
            raise ValueError(f"behaviour {kind!r}: {name} must be a neuron name, got {params[name]!r}")
    if kind == "stale" and not _positive_int(params["lag"]):
        raise ValueError(f"behaviour 'stale': lag must be an integer >= 1, got {params['lag']!r}")
    if kind == "noisy" and "scale" in params and not _positive_number(params["scale"]):
        raise ValueError(f"behaviour 'noisy': scale must be a finite number > 0, got {params['scale']!r}")
    if kind == "copier" and "noise" in params and not (_finite_number(params["noise"]) and params["noise"] >= 0):
        raise ValueError(f"behaviour 'copier': noise must be a finite number >= 0, got {params['noise']!r}")
    if kind == "free_rider" and "scale" in params and not (_finite_number(params["scale"]) and params["scale"] >= 0):
        raise ValueError(f"behaviour 'free_rider': scale must be a finite number >= 0, got {params['scale']!r}")
    if kind == "late" and "delay_blocks" in params and not _positive_int(params["delay_blocks"]):
        raise ValueError(f"behaviour 'late': delay_blocks must be an integer >= 1, got {params['delay_blocks']!r}")
    if kind == "poisoner" and "scale" in params and not (_finite_number(params["scale"]) and params["scale"] != 1):
        raise ValueError(f"behaviour 'poisoner': scale must be a finite number other than 1, got {params['scale']!r}")
    if kind == "malformed" and "size" in params and not _positive_int(params["size"]):
        raise ValueError(f"behaviour 'malformed': size must be an integer > 0, got {params['size']!r}")
    if kind == "malformed" and "variant" in params and params["variant"] not in MALFORMED_VARIANTS:
        raise ValueError(f"behaviour 'malformed': variant must be one of {', '.join(MALFORMED_VARIANTS)}, "
                         f"got {params['variant']!r}")


def referenced_neurons(kind: str, params: dict[str, object]) -> list[str]:
    """The other neurons a behaviour names (a copier's victim, a sybil's twin)."""
    return [str(params[name]) for name in ("victim", "twin") if name in params]

"""Parameter sweeps: a scenario run over a grid of settings x seeds, in parallel, summarised per grid
point as the median and 10-90% range over seeds.

A setting is a dotted path into the scenario file (`root.tao_weight`, `params.moving_alpha`,
`subnets.0.tao`, `model`) and a list of values (YAML scalars: `0.1`, `flow`, `[500, 5000]`). Every grid
point is applied to the file's data and checked by `parse_scenario` before any run starts, so a bad
key or value is named up front. Each run is the compiled engine (`amm.compiled`), audited for
conservation to the rao; a run that fails the audit stops the sweep naming it.

Pure pieces (`parse_setting`, `apply_settings`, `grid_points`, `summarise`) are separate from the
process pool (`run_sweep`), so they are tested on their own.
"""

from __future__ import annotations

import copy
import itertools
import os
import signal
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Callable

import numpy as np
import yaml

from amm.plan import compile_plan
from amm.scenario import Scenario, ScenarioError, parse_scenario

QUANTILES = (10, 50, 90)


@dataclass(frozen=True)
class Setting:
    key: str                    # dotted path into the scenario file
    values: tuple[object, ...]


@dataclass(frozen=True)
class RunSummary:
    """What a sweep keeps of one run: per subnet final quantities and the sampled series."""

    point: int                  # index of the grid point
    seed: int
    names: tuple[str, ...]
    price: np.ndarray           # final spot price
    share: np.ndarray           # share of all TAO the run emitted
    owner: np.ndarray           # alpha rao paid out to owners / miners / validators
    miner: np.ndarray
    validator: np.ndarray
    sample_blocks: np.ndarray
    series_price: np.ndarray    # [samples, subnets]
    series_share: np.ndarray
    conservation: str
    seconds: float


# ---- pure pieces ---------------------------------------------------------------------------------


def parse_setting(text: str) -> Setting:
    """``KEY=V1,V2,...`` -> Setting; values are YAML scalars (a bracketed list stays one value)."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key or not rest.strip():
        raise ScenarioError(f"--set {text!r}: expected KEY=V1,V2,...")
    if any(not part for part in key.split(".")):
        raise ScenarioError(f"--set {text!r}: empty part in the key {key!r}")
    values = []
    for raw in _split_values(rest):
        try:
            values.append(yaml.safe_load(raw))
        except yaml.YAMLError as exc:
            raise ScenarioError(f"--set {key}: value {raw!r} is not valid YAML: {' '.join(str(exc).split())}") from None
    if len(set(map(repr, values))) != len(values):
        raise ScenarioError(f"--set {key}: a value is repeated")
    return Setting(key, tuple(values))


def _split_values(text: str) -> list[str]:
    # commas split values, except inside [...] so a range like [500, 5000] is one value
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        depth += (ch == "[") - (ch == "]")
        current.append(ch)
    parts.append("".join(current).strip())
    if any(not p for p in parts):
        raise ScenarioError(f"--set ...={text!r}: an empty value")
    return parts


def apply_settings(data: dict, settings: dict[str, object]) -> dict:
    """A deep copy of the scenario data with each dotted key set. Every container on the path must
    exist (a list is indexed by number); the last key may be new, and `parse_scenario` judges it."""
    out = copy.deepcopy(data)
    for key, value in settings.items():
        parts = key.split(".")
        node = out
        for depth, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[:depth + 1]), key)
        last = parts[-1]
        if isinstance(node, list):
            node[_index(node, last, key)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise ScenarioError(f"--set {key}: {'.'.join(parts[:-1])} is a value, not a section")
    return out


def _child(node, part: str, path: str, key: str):
    if isinstance(node, dict):
        if part not in node:
            raise ScenarioError(f"--set {key}: the scenario has no {path!r}")
        return node[part]
    if isinstance(node, list):
        return node[_index(node, part, key)]
    raise ScenarioError(f"--set {key}: {path.rsplit('.', 1)[0]} is a value, not a section")


def _index(node: list, part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ScenarioError(f"--set {key}: {part!r} is not an index of a list of {len(node)}")
    return int(part)


def grid_points(settings: list[Setting]) -> list[dict[str, object]]:
    """Every combination of the settings' values, the first setting varying slowest."""
    keys = [s.key for s in settings]
    if len(set(keys)) != len(keys):
        raise ScenarioError(f"--set: a key is given twice ({', '.join(k for k in keys if keys.count(k) > 1)})")
    return [dict(zip(keys, combo)) for combo in itertools.product(*(s.values for s in settings))]


def check_points(data: dict, source: str, points: list[dict]) -> list[Scenario]:
    """Each grid point's scenario, parsed and checked; the first bad one is named."""
    scenarios = []
    for point in points:
        try:
            scenarios.append(parse_scenario(apply_settings(data, point), source))
        except ScenarioError as exc:
            described = ", ".join(f"{k}={v!r}" for k, v in point.items())
            raise ScenarioError(f"with {described}: {exc}") from None
    return scenarios


def summarise(runs: list[RunSummary]) -> dict:
    """Median and 10-90% range over a grid point's runs of each subnet's final price, emission share
    and payouts, and of the sampled series."""
    names = runs[0].names
    stack = {f: np.stack([getattr(r, f) for r in runs]) for f in
             ("price", "share", "owner", "miner", "validator", "series_price", "series_share")}
    q = {f: np.percentile(v, QUANTILES, axis=0) for f, v in stack.items()}
    subnets = {}
    for i, name in enumerate(names):
        row = {}
        for field, label in (("price", "price"), ("share", "share"), ("owner", "owner_paid"),
                             ("miner", "miner_paid"), ("validator", "validator_paid")):
            p10, p50, p90 = (float(x) for x in q[field][:, i])
            row.update({f"{label}_median": p50, f"{label}_p10": p10, f"{label}_p90": p90})
        subnets[name] = row
    return {"subnets": subnets, "series": {"block": runs[0].sample_blocks, "price": q["series_price"],
                                           "share": q["series_share"]}}


# ---- the runs ------------------------------------------------------------------------------------


def run_one(data: dict, source: str, point: int, settings: dict, seed: int) -> RunSummary:
    """One run of one grid point (in a worker process)."""
    from amm.compiled import run_compiled

    started = time.perf_counter()
    scenario = parse_scenario(apply_settings(data, settings), source)
    try:
        result = run_compiled(compile_plan(scenario, seed=seed))
    except AssertionError as exc:   # the conservation audit
        described = ", ".join(f"{k}={v!r}" for k, v in settings.items())
        raise AssertionError(f"run with {described}, seed {seed}: {exc}") from None
    f = result.final
    return RunSummary(point=point, seed=seed, names=result.names, price=f["price"], share=result.emission_share(),
                      owner=f["owner_paid"], miner=f["miner_paid"], validator=f["validator_paid"],
                      sample_blocks=result.sample_blocks, series_price=result.series_price,
                      series_share=result.series_share, conservation=result.conservation,
                      seconds=time.perf_counter() - started)


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def run_sweep(data: dict, source: str, settings: list[Setting], seeds: int, jobs: int | None = None,
              progress: Callable[[int, int], None] | None = None) -> dict:
    """Run every grid point x seed; returns {"scenario", "seeds", "grid": [...], "seconds"} with each
    grid point's settings, run count, per-subnet summary and series (numpy arrays)."""
    if seeds < 1:
        raise ScenarioError("--seeds must be >= 1")
    points = grid_points(settings)
    scenarios = check_points(data, source, points)
    tasks = [(i, point, scenarios[i].seed + s) for i, point in enumerate(points) for s in range(seeds)]
    jobs = min(jobs or default_jobs(), len(tasks))
    started = time.perf_counter()
    results: list[RunSummary] = []
    if jobs == 1:
        for i, point, seed in tasks:
            results.append(run_one(data, source, i, point, seed))
            if progress:
                progress(len(results), len(tasks))
    else:
        # spawn: workers start clean (no inherited locks or threads); each loads the cached kernel.
        # Workers ignore Ctrl-C; the parent cancels what has not started and waits for the rest.
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_ignore_interrupts) as pool:
            futures = [pool.submit(run_one, data, source, i, point, seed) for i, point, seed in tasks]
            try:
                for future in as_completed(futures):
                    results.append(future.result())
                    if progress:
                        progress(len(results), len(tasks))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    grid = []
    for i, point in enumerate(points):
        runs = sorted((r for r in results if r.point == i), key=lambda r: r.seed)
        summary = summarise(runs)
        grid.append({"settings": point, "runs": len(runs), "seeds": [r.seed for r in runs],
                     "conservation": "exact on every run" if all(r.conservation.startswith("exact") for r in runs)
                     else "; ".join(sorted({r.conservation for r in runs})),
                     "run_seconds_median": float(np.median([r.seconds for r in runs])), **summary})
    return {"scenario": scenarios[0].name, "seeds": seeds, "jobs": jobs, "grid": grid,
            "seconds": time.perf_counter() - started}


def sweep_json(sweep: dict) -> dict:
    """The sweep as JSON: the layout `bench_json.py sweep` reads, plus each subnet's payouts."""
    grid = []
    for point in sweep["grid"]:
        grid.append({"settings": point["settings"], "runs": point["runs"], "seeds": point["seeds"],
                     "conservation": point["conservation"], "subnets": point["subnets"]})
    return {"scenario": sweep["scenario"], "seeds": sweep["seeds"], "jobs": sweep["jobs"], "grid": grid,
            "seconds": round(sweep["seconds"], 3)}

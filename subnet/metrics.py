"""Prometheus metrics of the miner, the validator, the chain and `subnet up`'s supervisor (names and meanings: docs/metrics.md).

Each process builds its own `CollectorRegistry` (no module-level registry: tests run several in one
interpreter) and serves it on the port its config names (`metrics_port` in neurons.yaml, or
`--metrics-port`); without a port nothing is served. Values are recorded once per window from the
same figures the process writes to metrics.jsonl, so the two never disagree.
"""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

# Where a window's wall time goes (miner/loop.py MinerWindow): counters in seconds, by phase.
MINER_PHASES = ("train", "compress", "upload", "wait_aggregate", "idle")
VALIDATOR_PHASES = ("fetch", "aggregate", "wait", "evaluate")
METRICS_PORT_FILE = "metrics.port"   # in a neuron's state dir: the port it bound (for metrics_port 0)
CALL_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def serve(registry: CollectorRegistry, port: int, host: str = "127.0.0.1"):
    """Serve `registry` at http://host:port/metrics from a daemon thread; returns the server."""
    try:
        server, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise OSError(f"metrics: cannot listen on {host}:{port}: {reason}") from None
    return server


class MinerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self.window = Gauge("tessera_miner_window", "Last window this miner completed", registry=r)
        self.model_version = Gauge("tessera_miner_model_version", "Global model version held", registry=r)
        self.loss = Gauge("tessera_miner_train_loss", "Mean inner-step training loss of the last window", registry=r)
        self.tokens_per_second = Gauge("tessera_miner_tokens_per_second", "Training throughput of the last window",
                                       registry=r)
        self.bytes_up = Counter("tessera_miner_uploaded_bytes", "Bytes stored (gradients and their intents)",
                                registry=r)
        self.bytes_down = Counter("tessera_miner_downloaded_bytes", "Bytes read from storage (aggregates, "
                                  "checkpoints, scores)", registry=r)
        self.seconds = Counter("tessera_miner_seconds", "Wall time by phase of the window", ["phase"], registry=r)
        self.windows = Counter("tessera_miner_windows", "Windows completed, by outcome", ["outcome"], registry=r)
        self.score = Gauge("tessera_miner_score", "This miner's final score in the lead validator's last scores",
                           registry=r)
        self.alpha_stake = Gauge("tessera_miner_alpha_stake_rao", "Alpha staked on this miner's hotkey (rao)",
                                 registry=r)
        self._totals = _Totals()
        for phase in MINER_PHASES:
            self.seconds.labels(phase)
        for outcome in ("uploaded", "no_upload"):
            self.windows.labels(outcome)

    def record(self, stats, *, bytes_up_total: int, bytes_down_total: int) -> None:
        """One window's `MinerWindow`; the byte totals are the process's storage clients' running totals."""
        self.window.set(stats.window)
        self.model_version.set(stats.version)
        if stats.train_loss is not None:
            self.loss.set(stats.train_loss)
        self.tokens_per_second.set(stats.tokens_per_s)
        self._totals.advance(self.bytes_up, bytes_up_total)
        self._totals.advance(self.bytes_down, bytes_down_total)
        for phase in MINER_PHASES:
            self.seconds.labels(phase).inc(max(0.0, getattr(stats, f"{phase}_s")))
        self.windows.labels("uploaded" if stats.bytes_up else "no_upload").inc()
        if stats.score is not None:
            self.score.set(stats.score)
        self.alpha_stake.set(stats.alpha_stake)


class ValidatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self.window = Gauge("tessera_validator_window", "Last window this validator completed", registry=r)
        self.loss = Gauge("tessera_validator_held_out_loss", "Global model's loss on the held-out split", registry=r)
        self.uploads = Counter("tessera_validator_uploads", "Miner uploads checked, by verdict (ok, missing, "
                               "late, copied, or the wire check that refused it)", ["verdict"], registry=r)
        self.evaluated = Gauge("tessera_validator_evaluated_miners", "Miners evaluated in the last window",
                               registry=r)
        self.forward_passes = Counter("tessera_validator_forward_passes", "Evaluation forward passes", registry=r)
        self.rating = Gauge("tessera_validator_rating", "OpenSkill ordinal of each rated miner", ["uid"], registry=r)
        self.weight = Gauge("tessera_validator_weight", "Weight this validator gives each miner", ["uid"],
                            registry=r)
        self.weights_set = Counter("tessera_validator_weights_set", "set_weights calls the chain accepted",
                                   registry=r)
        self.stake = Gauge("tessera_validator_stake_rao", "Alpha staked on this validator's hotkey (rao)", registry=r)
        self.is_lead = Gauge("tessera_validator_aggregate_chosen", "1 if this validator's aggregate was the one "
                             "applied in the last window", registry=r)
        self.bytes_up = Counter("tessera_validator_uploaded_bytes", "Bytes stored (aggregates, scores, checkpoints)",
                                registry=r)
        self.bytes_down = Counter("tessera_validator_downloaded_bytes", "Bytes read from storage", registry=r)
        self.seconds = Counter("tessera_validator_seconds", "Wall time by phase of the window", ["phase"], registry=r)
        self._totals = _Totals()
        for phase in VALIDATOR_PHASES:
            self.seconds.labels(phase)
        self.uploads.labels("ok")

    def record(self, stats, *, uid: int, ratings: dict[int, float], weights: dict[int, float], stake: int | None,
               bytes_up_total: int, bytes_down_total: int) -> None:
        """One window's `ValidatorWindow` plus what the validator holds after it."""
        self.window.set(stats.window)
        if stats.held_out_loss is not None:
            self.loss.set(stats.held_out_loss)
        for verdict in stats.verdicts.values():
            self.uploads.labels(verdict).inc()
        self.evaluated.set(len(stats.evaluated))
        self.forward_passes.inc(stats.forward_passes)
        _replace_series(self.rating, ratings)
        _replace_series(self.weight, weights)
        if stats.weights_set:
            self.weights_set.inc()
        if stake is not None:
            self.stake.set(stake)
        self.is_lead.set(1 if stats.aggregate_from == uid else 0)
        self._totals.advance(self.bytes_up, bytes_up_total)
        self._totals.advance(self.bytes_down, bytes_down_total)
        for phase in VALIDATOR_PHASES:
            self.seconds.labels(phase).inc(max(0.0, getattr(stats, f"{phase}_s")))


class ChainMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self.block = Gauge("tessera_chain_block_height", "Current block", registry=r)
        self.requests = Counter("tessera_chain_requests", "API requests, by kind (a call's name, or the query "
                                "route) and outcome (ok or the error code)", ["kind", "outcome"], registry=r)
        self.latency = Histogram("tessera_chain_request_seconds", "Time to answer an API request, by kind", ["kind"],
                                 buckets=CALL_SECONDS_BUCKETS, registry=r)

    def observe(self, kind: str, outcome: str, seconds: float) -> None:
        self.requests.labels(kind, outcome).inc()
        self.latency.labels(kind).observe(seconds)


class SupervisorMetrics:
    """`subnet up`'s own: which processes run and how often each was started again."""

    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self.restarts = Counter("tessera_process_restarts", "Times `subnet up` started a process again after it "
                                "exited, by process name", ["process"], registry=r)
        self.up = Gauge("tessera_process_up", "1 while the process runs, 0 while it waits to be restarted",
                        ["process"], registry=r)


class _Totals:
    """Counters that follow running totals kept elsewhere (storage clients count their own bytes)."""

    def __init__(self):
        self._seen: dict[int, int] = {}

    def advance(self, counter: Counter, total: int) -> None:
        seen = self._seen.get(id(counter), 0)
        if total > seen:
            counter.inc(total - seen)
            self._seen[id(counter)] = total


def _replace_series(gauge: Gauge, values: dict[int, float]) -> None:
    """Per-uid gauges: exactly the uids of `values` (a deregistered miner's series disappears)."""
    gauge.clear()
    for uid, value in values.items():
        gauge.labels(str(uid)).set(value)

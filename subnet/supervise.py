"""Keeping a local network's processes running: `subnet up` starts again any process that exits.

A process that dies is started again after a backoff that doubles with each quick death (1 s, 2 s,
4 s, ... up to a minute), so a neuron that crashes at start-up does not spin, and returns to the
first delay once a process has run for a while. Nothing is lost by a restart: the chain keeps its
database, storage its data directory, a validator its ratings and a miner its checkpoint and error
feedback in their state directories (each resumes from them on start).

`restart_delay` is the policy as a pure function; `Supervisor` applies it to a `LocalNetwork`'s
processes on each `poll`, with an injectable clock so the schedule is tested without waiting.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    first_delay_s: float = 1.0
    max_delay_s: float = 60.0
    stable_after_s: float = 60.0    # a process that ran this long before it died starts the backoff afresh


def restart_delay(policy: RestartPolicy, failures: int) -> float:
    """Seconds to wait before starting a process again after its ``failures``-th quick death in a row."""
    if failures < 1:
        raise ValueError(f"failures must be >= 1, got {failures}")
    return min(policy.max_delay_s, policy.first_delay_s * 2.0 ** (failures - 1))


@dataclass
class ProcessRecord:
    started_at: float
    restarts: int = 0
    failures: int = 0               # quick deaths in a row
    restart_at: float | None = None
    last_exit: int | None = None


@dataclass
class Supervisor:
    """Watches ``net.procs``; ``poll`` schedules and performs restarts and says what it did.

    ``start(name)`` starts a process again (LocalNetwork.restart). ``metrics`` (optional) is a
    `subnet.metrics.SupervisorMetrics`."""

    procs: dict
    start: Callable[[str], object]
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    clock: Callable[[], float] = time.monotonic
    metrics: object = None
    records: dict[str, ProcessRecord] = field(default_factory=dict)

    def poll(self) -> list[str]:
        """One look at every process: exits noticed and restarts made, as lines for the operator."""
        now = self.clock()
        events = []
        for name, proc in list(self.procs.items()):
            record = self.records.setdefault(name, ProcessRecord(started_at=now))
            if record.restart_at is None:
                code = proc.poll()
                if code is None:
                    self._set_up(name, True)
                    continue
                quick = now - record.started_at < self.policy.stable_after_s
                record.failures = record.failures + 1 if quick else 1
                record.last_exit = code
                delay = restart_delay(self.policy, record.failures)
                record.restart_at = now + delay
                self._set_up(name, False)
                events.append(f"{name} exited with {describe_exit(code)}; starting it again in {delay:.0f} s")
            if now >= record.restart_at:
                self.start(name)
                record.restarts += 1
                record.started_at, record.restart_at = now, None
                if self.metrics is not None:
                    self.metrics.restarts.labels(name).inc()
                self._set_up(name, True)
                events.append(f"{name} started again (restart {record.restarts})")
        return events

    def state(self, name: str) -> str:
        """What the dashboard shows: running, or waiting to restart, with the restart count."""
        record = self.records.get(name)
        if record is None:
            return "-"
        if record.restart_at is not None:
            wait = max(0.0, record.restart_at - self.clock())
            text = f"died ({describe_exit(record.last_exit)}), restart in {wait:.0f}s"
        else:
            text = "running"
        return text + (f", {record.restarts} restarts" if record.restarts else "")

    def restarts(self) -> dict[str, int]:
        return {name: record.restarts for name, record in self.records.items()}

    def _set_up(self, name: str, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.up.labels(name).set(1 if up else 0)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit code"
    return f"signal {-code}" if code < 0 else f"exit code {code}"

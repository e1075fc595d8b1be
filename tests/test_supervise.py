"""The restart policy and the supervisor's schedule, with a hand-driven clock and stand-in processes
(the real processes are killed and restarted in tests/network/test_up.py)."""
from __future__ import annotations

import pytest

from subnet.metrics import SupervisorMetrics
from subnet.supervise import RestartPolicy, Supervisor, describe_exit, restart_delay


def test_the_delay_doubles_with_each_quick_death_up_to_the_cap():
    policy = RestartPolicy(first_delay_s=1.0, max_delay_s=60.0)
    assert [restart_delay(policy, n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert restart_delay(RestartPolicy(first_delay_s=0.5, max_delay_s=3), 3) == 2.0
    with pytest.raises(ValueError):
        restart_delay(policy, 0)


class Proc:
    def __init__(self):
        self.code = None

    def poll(self):
        return self.code


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def make(policy=RestartPolicy(first_delay_s=1.0, max_delay_s=8.0, stable_after_s=30.0)):
    procs = {"chain": Proc(), "m1": Proc()}
    started = []

    def start(name):
        started.append(name)
        procs[name] = Proc()

    clock, metrics = Clock(), SupervisorMetrics()
    return procs, started, clock, metrics, Supervisor(procs=procs, start=start, policy=policy, clock=clock,
                                                      metrics=metrics)


def restarts(metrics, name):
    return metrics.registry.get_sample_value("tessera_process_restarts_total", {"process": name}) or 0.0


def up(metrics, name):
    return metrics.registry.get_sample_value("tessera_process_up", {"process": name})


def test_a_dead_process_is_started_again_after_the_delay_and_counted():
    procs, started, clock, metrics, supervisor = make()
    assert supervisor.poll() == [] and up(metrics, "m1") == 1
    procs["m1"].code = -9
    assert supervisor.poll() == ["m1 exited with signal 9; starting it again in 1 s"]
    assert started == [] and up(metrics, "m1") == 0 and supervisor.state("m1") == "died (signal 9), restart in 1s"
    clock.now += 0.9
    assert supervisor.poll() == [] and started == []
    clock.now += 0.1
    assert supervisor.poll() == ["m1 started again (restart 1)"]
    assert started == ["m1"] and restarts(metrics, "m1") == 1 and up(metrics, "m1") == 1
    assert supervisor.state("m1") == "running, 1 restarts" and supervisor.state("chain") == "running"
    assert supervisor.restarts() == {"chain": 0, "m1": 1}


def test_quick_deaths_back_off_and_a_stable_run_resets_the_backoff():
    procs, started, clock, metrics, supervisor = make()
    supervisor.poll()
    delays = []
    for _ in range(5):   # dies at once each time: 1, 2, 4, 8, 8 (capped)
        procs["m1"].code = 1
        event = supervisor.poll()[0]
        delays.append(int(event.rsplit(" in ", 1)[1].split()[0]))
        clock.now += delays[-1]
        supervisor.poll()
    assert delays == [1, 2, 4, 8, 8] and restarts(metrics, "m1") == 5
    clock.now += 30.0      # ran for stable_after_s
    procs["m1"].code = 1
    assert supervisor.poll() == ["m1 exited with exit code 1; starting it again in 1 s"]


def test_every_process_is_watched_on_its_own():
    procs, started, clock, metrics, supervisor = make()
    supervisor.poll()
    procs["chain"].code = -9
    procs["m1"].code = 0
    events = supervisor.poll()
    assert len(events) == 2 and "chain exited with signal 9" in events[0] and "m1 exited with exit code 0" in events[1]
    clock.now += 1
    supervisor.poll()
    assert sorted(started) == ["chain", "m1"] and restarts(metrics, "chain") == restarts(metrics, "m1") == 1


def test_exit_descriptions():
    assert describe_exit(-15) == "signal 15" and describe_exit(3) == "exit code 3" and describe_exit(None) == "no exit code"

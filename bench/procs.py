"""The processes of a local network, read from /proc (Linux): which is which, and their memory.

Shared by the soak and load benchmarks; nothing here starts or stops a process.
"""
from __future__ import annotations

import os
from pathlib import Path


def children(root_pid: int) -> list[int]:
    """Every live descendant of `root_pid` (not itself), found through each process's parent pid."""
    parent_of: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # the command name (field 2) is in parentheses and may hold spaces: split after its last ')'
        parent_of[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
    found, frontier = [], [root_pid]
    while frontier:
        pid = frontier.pop()
        kids = [p for p, parent in parent_of.items() if parent == pid]
        found += kids
        frontier += kids
    return found


def role_of(pid: int) -> str | None:
    """A name for a network process from its command line: the neuron's --name, chain, storage or weed."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    args = [a.decode(errors="replace") for a in argv if a]
    if "--name" in args[:-1]:
        return args[args.index("--name") + 1]
    if args and os.path.basename(args[0]) == "weed":
        return "weed"
    for role in ("chain", "storage"):
        if role in args and "subnet.cli" in args:
            return role
    return None


def rss_mb(pid: int) -> tuple[float, float] | None:
    """(current, peak) resident memory of `pid` in MiB, or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024   # kB
    if "VmRSS" not in fields:
        return None   # a zombie
    return fields["VmRSS"], fields.get("VmHWM", fields["VmRSS"])


def network_rss(root_pid: int) -> dict[str, tuple[int, float, float]]:
    """name -> (pid, current MiB, peak MiB) for every named process under `root_pid`."""
    out = {}
    for pid in children(root_pid):
        name = role_of(pid)
        memory = rss_mb(pid) if name else None
        if memory is not None:
            out[name] = (pid, *memory)
    return out

"""Fault injection on a real local network: SIGKILL one process at a time and measure the recovery
(printed, never asserted).

    python bench/faults.py [--faults chain,storage,lead,validator,miner,chain+lead,...] [--json OUT] [--root DIR]
                           [--timeout S]

Starts storage, the chain, two validators (the first staked more, so it leads) and three miners through
`subnet.localnet.LocalNetwork`, supervised as `subnet up` supervises them (`subnet.supervise`: a process
that dies is started again after its backoff). Once every miner has trained and the model hashes agree,
each fault in turn: SIGKILL its target (or, for A+B, both targets at once) at a random moment of a
window, then wait for

- recovered: the target runs again and the network trains past the fault;
- windows_to_agree: windows after the one it was killed in (for `stall`: resumed in) until a window
  whose every reported model hash (miners and validators) is equal (None: not within --timeout);
- confirmed_calls_lost: signed calls the chain had confirmed before the kill (each signer's nonce, read
  from the chain) missing after it (a nonce that went back);
- conserved: the chain's conservation audit (GET /audit) holds afterwards;
- ratings_kept: a killed validator reloads its ratings ("N rated miners" with N > 0 in its log);
  for other targets, the validators' ratings survived (still rated after the fault).

Every neuron reaches storage through a proxy (`subnet.faultproxy`, passing bytes unchanged until a
fault says otherwise), and m3 reaches storage and the chain through proxies of its own, so three
faults need no kill: `upload` holds m3's next gradient PUT after its headers and SIGKILLs m3 then;
`partition` drops everything m3 sends or is sent (its committed bucket endpoint included, so the
validators cannot read it either) for 3 windows; `slow-storage` delays every storage reply for 3
windows. For these, windows are counted from the end of the fault, and recovered also needs every
neuron to have stayed up (no restart) and written a metrics line in the window after it (no stall).

`--json` writes exactly {"faults": [{"name", "target", "recovered", "windows_to_agree",
"confirmed_calls_lost", "conserved", "ratings_kept"}]} (plus per fault "windows_skipped": windows from the
fault's to the agreeing one that no aggregate trained; and "seconds").
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from subnet.config import load_preset  # noqa: E402
from subnet.faultproxy import FaultProxy  # noqa: E402
from subnet.localnet import LocalNetwork, NeuronSpec  # noqa: E402
from subnet.protocol import clock  # noqa: E402
from subnet.supervise import RestartPolicy, Supervisor  # noqa: E402

PROG = "faults.py"
FAULTS = {   # name -> (target description, how to choose the process)
    "chain": "the chain",
    "storage": "the S3 server",
    "lead": "the lead validator",
    "validator": "the other validator",
    "miner": "a miner, at a random moment of its window (often mid-upload)",
    "stall": "a miner frozen (SIGSTOP) for 3 windows, then resumed: it falls behind and must catch up",
    "upload": "a miner SIGKILLed exactly mid-upload (its gradient's headers sent, the body held)",
    "partition": "a miner cut off from chain and storage for 3 windows (its endpoints drop every packet)",
    "slow-storage": "every storage reply delayed (--slow-delay s) for 3 windows",
}
CUT_OFF = "m3"   # the miner behind its own proxies (upload, partition)
PAIRS = ("chain+lead", "storage+miner", "lead+validator")   # two at once
NEURONS = [NeuronSpec("v1", "validator", stake=300.0), NeuronSpec("v2", "validator", stake=100.0),
           NeuronSpec("m1", "miner"), NeuronSpec("m2", "miner"), NeuronSpec("m3", "miner")]
RATED = re.compile(r"(\d+) rated miners")


class Harness:
    def __init__(self, net: LocalNetwork, protocol, slow_delay: float = 1.0):
        self.net, self.protocol, self.slow_delay = net, protocol, slow_delay
        self.storage_proxies: list[FaultProxy] = []   # every neuron's way to storage
        self.cut_off: dict[str, FaultProxy] = {}      # CUT_OFF's own: "storage", "chain"
        self.supervisor = Supervisor(procs=net.procs, start=net.restart,
                                     policy=RestartPolicy(first_delay_s=1.0, stable_after_s=30.0))

    def get(self, path: str, timeout: float = 2.0):
        try:
            return json.loads(urllib.request.urlopen(self.net.chain_url + path, timeout=timeout).read())
        except OSError:
            return None

    def window(self) -> int | None:
        head = self.get("/head")
        return clock.window_of(head["block"], self.protocol) if head else None

    def wait(self, what: str, condition, timeout: float):
        """Poll `condition` (the supervisor restarting what dies meanwhile) until true or `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.supervisor.poll():
                print(f"    {event}", flush=True)
            value = condition()
            if value:
                return value
            time.sleep(0.5)
        print(f"    timed out after {timeout:.0f} s waiting for {what}", flush=True)
        return None

    def start_proxies(self) -> None:
        """A storage proxy for every neuron but CUT_OFF, which gets one for storage and one for the chain."""
        net = self.net
        shared = FaultProxy(upstream_port=net.storage_port).start()
        own = FaultProxy(upstream_port=net.storage_port).start()
        self.storage_proxies = [shared, own]
        self.cut_off = {"storage": own, "chain": FaultProxy(upstream_port=net.chain_port).start()}
        (net.root / "proxied").mkdir(exist_ok=True)
        for spec in net.neurons:
            settings = json.loads((net.root / "storage" / "neurons" / f"{spec.name}.json").read_text())
            settings["endpoint"] = (own if spec.name == CUT_OFF else shared).url
            settings.pop("commitment", None)   # formed again from the new endpoint
            path = net.root / "proxied" / f"{spec.name}.json"
            path.write_text(json.dumps(settings))
            path.chmod(0o600)

    def neuron_args(self, name: str) -> list[str]:
        args = ["--storage", str(self.net.root / "proxied" / f"{name}.json")]
        return args + (["--chain", self.cut_off["chain"].url] if name == CUT_OFF else [])

    def stop_proxies(self) -> None:
        for proxy in [*self.storage_proxies, self.cut_off.get("chain")]:
            if proxy is not None:
                proxy.stop()

    def hashes(self) -> dict[int, set[str]]:
        """Window -> the model hashes the neurons reported for it."""
        out: dict[int, set[str]] = {}
        for spec in self.net.neurons:
            for row in self.net.metrics(spec.name):
                if row.get("model_hash"):
                    out.setdefault(row["window"], set()).add(row["model_hash"])
        return out

    def agreed_after(self, window: int) -> int | None:
        """The first window after `window` in which every miner reported, all with one hash."""
        reported = {spec.name: {row["window"]: row.get("model_hash") for row in self.net.metrics(spec.name)}
                    for spec in self.net.neurons if spec.role == "miner"}
        everyone = self.hashes()
        for w in sorted({w for rows in reported.values() for w in rows if w > window}):
            seen = {rows.get(w) for rows in reported.values()}
            if None not in seen and len(seen) == 1 and len(everyone.get(w, set())) == 1:
                return w
        return None

    def skipped(self, first: int, last: int) -> int:
        """Windows in [first, last] that no aggregate trained (every miner's line says none applied)."""
        applied: dict[int, bool] = {}
        for spec in self.net.neurons:
            if spec.role == "miner":
                for row in self.net.metrics(spec.name):
                    if first <= row["window"] <= last:
                        applied[row["window"]] = applied.get(row["window"], False) or \
                            row.get("aggregate_from") is not None
        return sum(1 for w in range(first, last + 1) if not applied.get(w, False))

    def nonces(self) -> dict[str, int]:
        from subnet.wallet import load_wallet

        out = {}
        for spec in self.net.neurons:
            wallet = load_wallet(spec.name, self.net.wallet_dir)
            for key in (wallet.coldkey_address, wallet.hotkey.address):
                account = self.get(f"/accounts/{key}")
                if account is not None:
                    out[key] = account["nonce"]
        return out

    def starts(self, name: str) -> list[int]:
        """The rated-miner count a validator logged at each of its starts."""
        return [int(n) for n in RATED.findall(self.net.log_path(name).read_text(errors="replace"))]

    def lead(self) -> str:
        rows = self.net.metrics("m1")
        uid = next((r["aggregate_from"] for r in reversed(rows) if r.get("aggregate_from") is not None), None)
        metagraph = self.get("/metagraph/1") or {}
        from subnet.wallet import load_wallet
        hotkeys = {load_wallet(s.name, self.net.wallet_dir).hotkey.address: s.name for s in self.net.neurons}
        for u, hotkey in zip(metagraph.get("uids", []), metagraph.get("hotkeys", [])):
            if u == uid:
                return hotkeys.get(hotkey, "v1")
        return "v1"


def targets_of(h: Harness, fault: str) -> list[str]:
    """The processes a fault kills: one name, or several joined by '+' (killed at the same moment)."""
    lead = h.lead()
    choose = {"chain": "chain", "storage": "storage", "lead": lead, "validator": "v2" if lead == "v1" else "v1",
              "miner": "m1", "stall": "m2", "upload": CUT_OFF, "partition": CUT_OFF, "slow-storage": "storage"}
    return [choose[part] for part in fault.split("+")]


def run_fault(h: Harness, fault: str, timeout: float, rng: random.Random) -> dict:
    net = h.net
    started = time.monotonic()
    window = h.window()
    # a random moment of the window: the miner is as likely to be training as uploading
    window_s = h.protocol.blocks_per_window * net.block_time
    time.sleep(rng.uniform(0, window_s))
    targets = targets_of(h, fault)
    before = h.nonces()
    restarts = {name: h.supervisor.restarts().get(name, 0) for name in net.procs}   # the targets among them
    validators = [s.name for s in net.neurons if s.role == "validator"]
    starts_before = {name: len(h.starts(name)) for name in validators}
    window = h.window() or window
    struck = window   # the window the fault began in
    alive_before = {name for name, proc in net.procs.items() if proc.poll() is None}
    if fault in ("partition", "slow-storage"):
        proxies = list(h.cut_off.values()) if fault == "partition" else h.storage_proxies
        print(f"  {fault}: from window {window}, for 3 windows", flush=True)
        for proxy in proxies:
            if fault == "partition":
                proxy.partition()
            else:
                proxy.delay_s = h.slow_delay
        h.wait("3 windows", lambda: (h.window() or window) >= window + 3, timeout)
        for proxy in proxies:
            if fault == "partition":
                proxy.heal()
            else:
                proxy.delay_s = 0.0
        window = h.window() or window   # agreement is counted from the end of the fault
        back = h.wait("a metrics line from every neuron after the fault", lambda: all(
            any(row["window"] > window for row in net.metrics(s.name)) for s in net.neurons), timeout)
        died = {name for name in alive_before if h.supervisor.restarts().get(name, 0) > restarts[name]}
        back = bool(back) and not died
    elif fault == "upload":
        (target,) = targets
        proxy = h.cut_off["storage"]
        proxy.hold_uploads(rb"^PUT /[^ ]*/gradient-\d+-\d+\.safetensors ")
        held = h.wait(f"{target}'s next gradient upload", lambda: proxy.upload_held.is_set(), timeout)
        window = h.window() or window
        print(f"  {fault}: SIGKILL {target} in window {window} mid-upload "
              f"({(proxy.held_request or b'').decode(errors='replace')[:80]})", flush=True)
        os.killpg(net.procs[target].pid, signal.SIGKILL)
        proxy.hold_uploads(None)
        back = bool(held) and h.wait(f"{target} to be started again", lambda: h.supervisor.restarts().get(
            target, 0) > restarts[target] and net.procs[target].poll() is None, timeout)
    elif fault == "stall":
        (target,) = targets
        print(f"  {fault}: SIGSTOP {target} in window {window}, SIGCONT 3 windows later", flush=True)
        os.killpg(net.procs[target].pid, signal.SIGSTOP)
        h.wait("3 windows", lambda: (h.window() or window) >= window + 3, timeout)
        os.killpg(net.procs[target].pid, signal.SIGCONT)
        back = net.procs[target].poll() is None
        window = h.window() or window   # agreement is counted from the resume
    else:
        print(f"  {fault}: SIGKILL {', '.join(targets)} in window {window}", flush=True)
        for target in targets:
            os.killpg(net.procs[target].pid, signal.SIGKILL)
        back = h.wait(f"{', '.join(targets)} to be started again",
                      lambda: all(h.supervisor.restarts().get(t, 0) > restarts[t] and net.procs[t].poll() is None
                                  for t in targets), timeout)
    agreed = h.wait("every miner on one model after the fault", lambda: h.agreed_after(window), timeout) if back \
        else None
    after = h.wait("the chain's accounts", lambda: h.nonces() or None, 30) or {}
    lost = sum(max(0, nonce - after.get(key, nonce)) for key, nonce in before.items())
    audit = h.get("/audit", timeout=10) or {}
    killed_validators = [t for t in targets if t in validators]
    for target in killed_validators:
        h.wait(f"{target}'s start line", lambda: len(h.starts(target)) > starts_before[target], 60)
    # every validator that started again (a target, or one that died meanwhile) reloaded its ratings
    kept = all(h.starts(name)[-1] > 0 for name in validators if len(h.starts(name)) > starts_before[name])
    if any(len(h.starts(t)) == starts_before[t] for t in killed_validators):
        kept = False   # one never came back to say
    result = {"name": fault, "target": " and ".join(FAULTS[part] for part in fault.split("+")),
              "recovered": bool(back and agreed), "windows_to_agree": (agreed - window) if agreed else None,
              "confirmed_calls_lost": lost, "conserved": bool(audit.get("ok")), "ratings_kept": bool(kept),
              "windows_skipped": h.skipped(struck, agreed if agreed else window),
              "seconds": round(time.monotonic() - started, 1)}
    print(f"    recovered {result['recovered']}, windows to agree {result['windows_to_agree']}, calls lost {lost}, "
          f"conserved {result['conserved']}, ratings kept {result['ratings_kept']}, windows skipped "
          f"{result['windows_skipped']} ({result['seconds']} s)", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", default=",".join([*FAULTS, *PAIRS]),
                        help=f"comma-separated, from: {', '.join(FAULTS)}; A+B kills two at once "
                             f"(default: each alone, then {', '.join(PAIRS)})")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--root", type=Path, help="run directory (default: a temporary one, removed after)")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for each recovery step")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--slow-delay", type=float, default=1.0,
                        help="seconds each storage reply waits in slow-storage (default 1.0)")
    args = parser.parse_args(argv)
    faults = [f.strip() for f in args.faults.split(",") if f.strip()]
    unknown = [f for f in faults if not f or any(part not in FAULTS for part in f.split("+"))
               or len(set(f.split("+"))) != len(f.split("+"))]
    if unknown:
        parser.error(f"--faults: unknown {', '.join(unknown)} (known: {', '.join(FAULTS)})")
    preset = load_preset("tiny")
    from subnet.node.settings import default_dataset
    data = default_dataset(preset.model.vocab_size, ROOT / "data")
    root = args.root or Path(tempfile.mkdtemp(prefix="tessera-bench-faults-"))
    net = LocalNetwork(root, list(NEURONS), block_time=1.0, preset="tiny", data=data)
    h = Harness(net, preset.protocol, args.slow_delay)
    results = []
    try:
        print(f"starting the network in {root}", flush=True)
        net.start_infrastructure()
        h.start_proxies()
        for spec in NEURONS:
            net.start_neuron(spec.name, h.neuron_args(spec.name))
        ready = h.wait("every miner's first windows on one model",
                       lambda: all(len(net.metrics(s.name)) >= 2 for s in NEURONS if s.role == "miner")
                       and h.agreed_after(-1), 600)
        if not ready:
            print(f"{PROG}: error: the network did not start (logs in {root / 'logs'})", file=sys.stderr)
            return 1
        rng = random.Random(args.seed)
        for fault in faults:
            results.append(run_fault(h, fault, args.timeout, rng))
    finally:
        net.stop_all()
        h.stop_proxies()
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{'fault':<16} {'recovered':>9} {'windows':>8} {'lost':>5} {'conserved':>9} {'ratings':>8}")
    for r in results:
        print(f"{r['name']:<16} {str(r['recovered']):>9} {str(r['windows_to_agree']):>8} {r['confirmed_calls_lost']:>5} "
              f"{str(r['conserved']):>9} {str(r['ratings_kept']):>8}")
    if args.json:
        args.json.write_text(json.dumps({"faults": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

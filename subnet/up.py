"""`subnet up`: the whole local network from neurons.yaml, as real processes, with a live dashboard.

    subnet up [neurons.yaml] [--windows N] [--run-dir DIR] [--preset NAME]

Prepares the data if missing, creates the wallets the file names, starts `subnet storage` and
`subnet chain`, then each neuron as its own `validator run` / `miner run` process (what an operator
runs), all through `subnet.localnet.LocalNetwork`. One run directory holds every process's log and
state, the chain's database and the storage data. The dashboard reads only what anyone could read:
the chain over HTTP and each process's metrics.jsonl. A process that exits is started again with
backoff (`subnet.supervise`). Ctrl-C or SIGTERM stops everything (SIGTERM, then SIGKILL after a
timeout); with `--windows N` it stops after N completed windows and writes `summary.json` and
`summary.png` into the run directory.
"""
from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from subnet.files import atomic_write
from subnet.localnet import LocalNetwork, NeuronSpec, free_port
from subnet.metrics import SupervisorMetrics, serve
from subnet.neurons import NeuronsError, load_network
from subnet.supervise import Supervisor

SS58 = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{46,48}$")
REFRESH_S = 1.0
NETUID = 1


class RunDirError(RuntimeError):
    """The run directory holds no network (or an unreadable record of one)."""


@dataclass
class UpSettings:
    neurons_file: Path
    run_dir: Path
    preset: str = "tiny"
    windows: int | None = None
    threads: int = 1
    data: Path | None = None     # prepared dataset; default: the bundled corpus, prepared once
    chain_port: int = 0          # 0: one the OS hands out
    storage_port: int = 0
    metrics_port: int = 0        # `subnet up`'s own Prometheus metrics (restarts); 0: one the OS hands out
    dashboard: bool = True


# --- preparing the run directory ------------------------------------------------------------------

def wallet_names(document: dict) -> list[str]:
    """Every wallet the file refers to by name (neurons, chain balances, subnet owners)."""
    names = [n.get("wallet", n.get("name")) for n in document.get("neurons") or [] if isinstance(n, dict)]
    chain = document.get("chain") or {}
    names += [k for k in (chain.get("balances") or {}) if isinstance(k, str)]
    names += [s.get("owner") for s in chain.get("subnets") or [] if isinstance(s, dict)]
    return [n for n in dict.fromkeys(names) if isinstance(n, str) and not SS58.match(n)]


def check_behaviours(network) -> None:
    """Each adversary's kind and parameters, and that the neurons it names are other miners."""
    from miner.behaviour_kinds import check_behaviour, referenced_neurons

    miners = {n.name for n in network.neurons if n.role == "miner"}
    for index, neuron in enumerate(network.neurons):
        if neuron.behaviour is None:
            continue
        where = f"{network.path}: neurons[{index}].behaviour"
        if neuron.role != "miner":
            raise NeuronsError(f"{where}: only a miner has a behaviour ({neuron.name} is a {neuron.role})")
        try:
            check_behaviour(neuron.behaviour.kind, dict(neuron.behaviour.params))
        except ValueError as exc:
            raise NeuronsError(f"{where}: {exc}") from None
        for other in referenced_neurons(neuron.behaviour.kind, dict(neuron.behaviour.params)):
            if other == neuron.name or other not in miners:
                raise NeuronsError(f"{where}: {other!r} is not another miner of this file")


def prepare_run(settings: UpSettings) -> LocalNetwork:
    """The run directory's neurons.yaml (the user's, with storage and ports pointed into the run)
    and wallets; refuses a broken file before anything starts."""
    from subnet.files import load_yaml
    from subnet.wallet import create_wallet

    source = settings.neurons_file
    if not source.is_file():
        raise NeuronsError(f"{source}: no such neurons file")
    document = load_yaml(source, NeuronsError, "neurons file") or {}
    if not isinstance(document, dict):
        raise NeuronsError(f"{source}: must be a mapping of sections")
    check_behaviours(load_network(source, with_chain=False))   # every neuron key checked before anything exists
    root = settings.run_dir.resolve()
    (root / "logs").mkdir(parents=True, exist_ok=True)
    wallets = root / "wallets"
    for name in wallet_names(document):
        if not (wallets / name).exists():
            create_wallet(name, wallets)
    storage = dict(document.get("storage") or {})
    storage["dir"] = str(root / "storage")
    storage["port"] = settings.storage_port or free_port()
    document["storage"] = storage
    # Every process serves Prometheus metrics: on the file's port where it names one, else on one the
    # OS hands it (0), which it reports back (the chain in its port file, a neuron in its state dir).
    chain = document.get("chain")
    if chain is None:
        chain = document["chain"] = {}
    if isinstance(chain, dict):
        chain.setdefault("metrics_port", 0)
    for entry in document.get("neurons") or []:
        if isinstance(entry, dict) and entry.get("role") in ("miner", "validator"):
            entry.setdefault("metrics_port", 0)
    target = root / "neurons.yaml"
    atomic_write(target, yaml.safe_dump(document, sort_keys=False).encode())
    network = load_network(target, wallet_dir=wallets)   # the chain section too, now the wallets exist
    specs = [NeuronSpec(n.name, n.role, behaviour={"kind": n.behaviour.kind, **n.behaviour.params} if n.behaviour else None)
             for n in network.neurons if n.role in ("miner", "validator")]
    ports = {n.name: n.metrics_port for n in network.neurons if n.metrics_port}
    if isinstance(chain, dict) and chain.get("metrics_port"):
        ports["chain"] = chain["metrics_port"]
    if settings.metrics_port:
        ports["supervisor"] = settings.metrics_port    # served by `subnet up` itself (else a port from the OS)
    if not any(s.role == "validator" for s in specs) or not any(s.role == "miner" for s in specs):
        raise NeuronsError(f"{source}: neurons: a network needs at least one validator and one miner")
    return LocalNetwork(root=root, neurons=specs, block_time=network.block_time or 1.0, preset=settings.preset,
                        threads=settings.threads, chain_port=settings.chain_port,
                        storage_port=storage["port"], prepared=True, metrics_ports=ports)


# --- watching it ----------------------------------------------------------------------------------

def _get(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return json.loads(reply.read())
    except (OSError, ValueError):
        return None


def chain_over_http(url: str) -> tuple:
    """(head block, metagraph, pool, weights) from a running chain; None for what did not answer."""
    head = _get(f"{url}/head")
    return (head.get("block") if head else None, _get(f"{url}/metagraph/{NETUID}"), _get(f"{url}/pool/{NETUID}"),
            (_get(f"{url}/weights/{NETUID}") or {}).get("weights"))


def chain_from_database(db: Path) -> tuple:
    """The same from a stopped chain's database."""
    from subnet.chain.node import ChainNode

    if not db.is_file():
        raise RunDirError(f"{db.parent}: the chain is not running and has no database")
    node = ChainNode(db)
    return node.block, node.metagraph(NETUID), node.pool(NETUID), node.weights(NETUID)["weights"]


@dataclass
class Observation:
    """One look at the network: the chain's view and each process's latest metrics."""
    head: int | None
    metagraph: dict | None
    pool: dict | None
    weights: dict | None
    metrics: dict[str, list[dict]]
    alive: dict[str, bool]
    hotkeys: dict[str, str]
    supervision: dict[str, str] = field(default_factory=dict)   # name -> the supervisor's state (subnet up)

    def uid_of(self, name: str) -> int | None:
        mg, hotkey = self.metagraph, self.hotkeys.get(name)
        if not mg or hotkey not in mg["hotkeys"]:
            return None
        return mg["uids"][mg["hotkeys"].index(hotkey)]

    def column(self, name: str, key: str):
        uid = self.uid_of(name)
        if uid is None:
            return None
        return self.metagraph[key][self.metagraph["uids"].index(uid)]


@dataclass
class Watch:
    net: LocalNetwork
    started: float | None = field(default_factory=time.monotonic)   # None: a one-off look (status)
    losses: dict[int, float] = field(default_factory=dict)          # window -> held-out loss
    incentive: dict[int, dict[str, float]] = field(default_factory=dict)  # window -> miner -> incentive
    _hotkeys: dict[str, str] = field(default_factory=dict)

    def hotkeys(self) -> dict[str, str]:
        if not self._hotkeys:
            from subnet.wallet import load_wallet
            for spec in self.net.neurons:
                self._hotkeys[spec.name] = load_wallet(spec.name, self.net.wallet_dir).hotkey.address
        return self._hotkeys

    def observe(self, chain: tuple | None = None) -> Observation:
        """One look: `chain` as `chain_over_http` gives it (the default) or `chain_from_database`."""
        head, metagraph, pool, weights = chain if chain is not None else chain_over_http(self.net.chain_url)
        obs = Observation(
            head=head, metagraph=metagraph, pool=pool, weights=weights,
            metrics={s.name: self.net.metrics(s.name) for s in self.net.neurons},
            alive={name: proc.poll() is None for name, proc in self.net.procs.items()}, hotkeys=self.hotkeys())
        self.collect_losses(obs)
        window = self.completed_window(obs)
        if window is not None and obs.metagraph:
            self.incentive[window] = {s.name: obs.column(s.name, "incentive") or 0.0
                                      for s in self.net.neurons if s.role == "miner"}
        return obs

    def collect_losses(self, obs: Observation) -> None:
        """The held-out loss after each trained window (a skipped one leaves the model as it was)."""
        for spec in self.net.neurons:
            if spec.role == "validator":
                for row in obs.metrics[spec.name]:
                    if row.get("held_out_loss") is not None and row.get("aggregate_from") is not None:
                        self.losses.setdefault(row["window"], row["held_out_loss"])

    def completed_window(self, obs: Observation) -> int | None:
        done = [rows[-1]["window"] for s in self.net.neurons if s.role == "validator"
                for rows in [obs.metrics[s.name]] if rows]
        return max(done) if done else None

    def windows_completed(self, obs: Observation) -> int:
        """Windows whose aggregate the network applied (skipped windows, e.g. before the first
        validator has its permit, do not count), from the validators' metrics lines."""
        done = {row["window"] for s in self.net.neurons if s.role == "validator" for row in obs.metrics[s.name]
                if row.get("aggregate_from") is not None}
        return len(done)

    def windows_skipped(self, obs: Observation) -> int:
        seen = {row["window"]: row.get("aggregate_from") for s in self.net.neurons if s.role == "validator"
                for row in obs.metrics[s.name]}
        return sum(1 for source in seen.values() if source is None)


# --- the dashboard ----------------------------------------------------------------------------------

SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 40) -> str:
    values = values[-width:]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - low) / span * (len(SPARK) - 1) + 0.5))] for v in values)


def render(obs: Observation, watch: Watch, protocol) -> object:
    """The dashboard as rich renderables, 80 columns wide."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from subnet.protocol import clock

    head = obs.head
    window = clock.window_of(head, protocol) if head is not None else None
    losses = [watch.losses[w] for w in sorted(watch.losses)]
    top = Text(f"block {head if head is not None else '?'}  window {window if window is not None else '?'}  "
               f"trained {watch.windows_completed(obs)} skipped {watch.windows_skipped(obs)}"
               + (f"  up {time.monotonic() - watch.started:.0f}s" if watch.started is not None else ""))
    loss_line = Text(f"held-out loss {losses[-1]:.4f} (start {losses[0]:.4f})  {sparkline(losses)}"
                     if losses else "held-out loss: no window completed yet")
    pool = obs.pool or {}
    tao, alpha = pool.get("tao", 0), pool.get("alpha", 0)
    emission = pool.get("last_block_emission")
    per_block = (f"emission/block {emission['tao'] / 1e9:.4f} TAO (in {emission['tao_in'] / 1e9:.4f}), "
                 f"alpha in {emission['alpha_in'] / 1e9:.4f} out {emission['alpha_out'] / 1e9:.4f}"
                 if emission else "emission/block: -")
    pool_line = Text(f"pool: price {pool.get('price', 0):.4f} TAO/alpha, reserves {tao / 1e9:,.2f} TAO / "
                     f"{alpha / 1e9:,.2f} alpha\n{per_block}")
    miners = Table(title="miners", expand=False, min_width=78)
    for column in ("name", "status", "window", "loss", "score", "incentive", "alpha"):
        miners.add_column(column, justify="right" if column not in ("name", "status") else "left")
    validators = Table(title="validators", expand=False, min_width=78)
    for column in ("name", "status", "stake", "permit", "lead", "weights", "peers"):
        validators.add_column(column, justify="right" if column not in ("name", "status", "peers") else "left")
    lead_uid = None
    for spec in watch.net.neurons:
        rows = obs.metrics.get(spec.name) or []
        if spec.role == "validator" and rows and rows[-1].get("aggregate_from") is not None:
            lead_uid = rows[-1]["aggregate_from"]
    for spec in watch.net.neurons:
        rows = obs.metrics.get(spec.name) or []
        last = rows[-1] if rows else {}
        status = obs.supervision.get(spec.name) or (
            ("running" if obs.alive.get(spec.name) else "stopped") if spec.name in obs.alive else "-")
        stake = obs.column(spec.name, "stake")
        stake_text = f"{stake / 1e9:,.2f}" if stake is not None else "-"
        if spec.role == "miner":
            loss = last.get("train_loss")
            score = last.get("score")
            incentive = obs.column(spec.name, "incentive")
            miners.add_row(spec.name, status + (f" ({last['note']})" if last.get("note") else ""),
                           str(last.get("window", "-")), f"{loss:.3f}" if loss is not None else "-",
                           f"{score:.3f}" if score is not None else "-",
                           f"{incentive:.3f}" if incentive is not None else "-", stake_text)
        else:
            uid = obs.uid_of(spec.name)
            permit = obs.column(spec.name, "validator_permit")
            weights_set = sum(1 for row in rows if row.get("weights_set"))
            validators.add_row(spec.name, status, stake_text, "yes" if permit else "no",
                               "yes" if uid is not None and uid == lead_uid else "",
                               str(weights_set), ",".join(str(p) for p in last.get("peers") or []) or "-")
    parts = [top, loss_line, pool_line, miners, validators]
    if obs.supervision:
        parts.append(Text("chain: " + obs.supervision.get("chain", "-") + "   storage: "
                          + obs.supervision.get("storage", "-")))
    return Group(*parts)


# --- the run -------------------------------------------------------------------------------------

def summarise(watch: Watch, obs: Observation) -> dict:
    miners = [s.name for s in watch.net.neurons if s.role == "miner"]
    behaviours = {s.name: (s.behaviour if isinstance(s.behaviour, str) else s.behaviour["kind"])
                  for s in watch.net.neurons if s.behaviour is not None}
    shares = {}
    for window, by_miner in sorted(watch.incentive.items()):
        total = sum(by_miner.values())
        shares[window] = {m: (by_miner[m] / total if total else 0.0) for m in miners}
    return {
        "windows": [{"window": w, "held_out_loss": watch.losses[w]} for w in sorted(watch.losses)],
        "miners": {m: {"behaviour": behaviours.get(m), "alpha_stake": obs.column(m, "stake"),
                       "incentive": obs.column(m, "incentive"),
                       "incentive_share_by_window": {str(w): shares[w][m] for w in shares},
                       "windows_uploaded": sum(1 for r in obs.metrics.get(m, []) if r.get("bytes_up"))}
                   for m in miners},
        "validators": {s.name: {"stake": obs.column(s.name, "stake"),
                                "weights_set": sum(1 for r in obs.metrics.get(s.name, []) if r.get("weights_set"))}
                       for s in watch.net.neurons if s.role == "validator"},
        "pool": obs.pool,
    }


def plot_summary(summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    windows = [row["window"] for row in summary["windows"]]
    top.plot(windows, [row["held_out_loss"] for row in summary["windows"]], marker="o")
    top.set_ylabel("held-out loss")
    colours = plt.get_cmap("tab20")
    for index, (name, miner) in enumerate(summary["miners"].items()):
        by_window = miner["incentive_share_by_window"]
        xs = sorted(int(w) for w in by_window)
        # Adversaries dashed: 14 miners need more than colour to be told apart.
        bottom.plot(xs, [by_window[str(w)] for w in xs], label=name, color=colours(index % 20),
                    linestyle="--" if miner.get("behaviour") else "-")
    bottom.set_ylabel("share of miner incentive")
    bottom.set_xlabel("window")
    bottom.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summary_table(summary: dict) -> object:
    from rich.table import Table

    table = Table(title="summary")
    for column in ("miner", "alpha stake", "incentive", "windows uploaded"):
        table.add_column(column, justify="left" if column == "miner" else "right")
    for name, miner in summary["miners"].items():
        stake, incentive = miner["alpha_stake"], miner["incentive"]
        table.add_row(name, f"{stake / 1e9:,.3f}" if stake is not None else "-",
                      f"{incentive:.3f}" if incentive is not None else "-", str(miner["windows_uploaded"]))
    return table


RUN_INFO = "run.json"


def metrics_urls(net: LocalNetwork) -> dict[str, str]:
    """Each process's metrics URL, as far as it has reported its port."""
    ports = {name: net.metrics_port(name) for name in ["supervisor", "chain", *(s.name for s in net.neurons)]}
    return {name: f"http://127.0.0.1:{port}/metrics" for name, port in ports.items() if port}


def write_run_info(net: LocalNetwork) -> None:
    """What `subnet status` needs to find this network again."""
    info = {"chain_url": net.chain_url, "storage_port": net.storage_port, "preset": net.preset,
            "neurons": [{"name": s.name, "role": s.role} for s in net.neurons],
            "metrics": metrics_urls(net)}
    atomic_write(net.root / RUN_INFO, (json.dumps(info, indent=2) + "\n").encode())


def load_run(run_dir: Path) -> LocalNetwork:
    path = run_dir / RUN_INFO
    try:
        info = json.loads(path.read_text())
        specs = [NeuronSpec(n["name"], n["role"]) for n in info["neurons"]]
        port = int(info["chain_url"].rsplit(":", 1)[1])
        return LocalNetwork(root=run_dir.resolve(), neurons=specs, preset=str(info["preset"]), chain_port=port,
                            storage_port=int(info["storage_port"]), prepared=True)
    except FileNotFoundError:
        raise RunDirError(f"{run_dir}: no network was started here (no {RUN_INFO}); run `subnet up` first") from None
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise RunDirError(f"{path}: unreadable run record: {exc}") from None


def status(run_dir: Path, out=None) -> Observation:
    """`subnet status`: the dashboard's numbers once, from the running chain or, after a run, its database."""
    from rich.console import Console

    net = load_run(run_dir)
    watch = Watch(net, started=None)
    running = _get(f"{net.chain_url}/head") is not None
    obs = watch.observe(None if running else chain_from_database(net.root / "chain.db"))
    (out or Console()).print(("network running\n" if running else "network stopped; from its chain database\n"),
                             render(obs, watch, _protocol(net.preset)))
    return obs


def _protocol(preset: str):
    from subnet.config import load_preset
    return load_preset(preset).protocol


class Stop(Exception):
    """SIGTERM: stop like Ctrl-C."""


def run_up(settings: UpSettings, out=None) -> dict | None:
    """Start the network and watch it until Ctrl-C / SIGTERM or `windows` completed windows."""
    from rich.console import Console
    from rich.live import Live

    from subnet.config import load_preset
    from subnet.node.settings import default_dataset

    console = out or Console()
    protocol = load_preset(settings.preset).protocol
    net = prepare_run(settings)
    console.print(f"run directory {net.root}")
    if settings.data is not None:
        from subnet.data import TokenDataset
        # A bad dataset fails here, once, not in every neuron's process.
        TokenDataset(settings.data, "train", load_preset(settings.preset).model.seq_len)
        net.data = settings.data.resolve()
    else:
        net.data = default_dataset(load_preset(settings.preset).model.vocab_size).resolve()  # once, first

    def on_sigterm(signum, frame):
        raise Stop()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    watch = Watch(net)
    metrics = SupervisorMetrics()
    supervisor = Supervisor(procs=net.procs, start=net.restart, metrics=metrics)
    obs = None
    server = None
    try:
        server = serve(metrics.registry, net.metrics_ports.get("supervisor", 0))
        net.metrics_ports["supervisor"] = server.server_port
        console.print("starting storage and chain")
        net.start_infrastructure()
        write_run_info(net)
        reported = metrics_urls(net)
        for spec in net.neurons:
            if spec.role == "validator":
                net.start_neuron(spec.name)
        for spec in net.neurons:
            if spec.role == "miner":
                net.start_neuron(spec.name)
        console.print(f"started {len(net.neurons)} neurons; logs in {net.root / 'logs'}; restart counts at "
                      f"http://127.0.0.1:{net.metrics_ports['supervisor']}/metrics")
        with Live(console=console, refresh_per_second=2, transient=False,
                  auto_refresh=False) as live:
            while True:
                for event in supervisor.poll():
                    live.console.print(event)
                urls = metrics_urls(net)
                if urls != reported:   # a neuron reported its port (at start, or after a restart)
                    write_run_info(net)
                    reported = urls
                obs = watch.observe()
                obs.supervision = {name: supervisor.state(name) for name in net.procs}
                if settings.dashboard:
                    live.update(render(obs, watch, protocol), refresh=True)
                if settings.windows is not None and watch.windows_completed(obs) >= settings.windows:
                    break
                time.sleep(REFRESH_S)
    except (KeyboardInterrupt, Stop):
        console.print("stopping")
    finally:
        signal.signal(signal.SIGTERM, previous)
        if obs is not None:
            obs = watch.observe()   # the last look while the chain still runs
        net.stop_all()
        if server is not None:
            server.shutdown()
    if obs is None:
        return None
    summary = summarise(watch, obs)
    summary["restarts"] = supervisor.restarts()
    atomic_write(net.root / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    if summary["windows"]:
        plot_summary(summary, net.root / "summary.png")
    console.print(summary_table(summary))
    console.print(f"wrote {net.root / 'summary.json'}" + (" and summary.png" if summary["windows"] else ""))
    return summary

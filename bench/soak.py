"""A long run of the default network (`subnet up neurons.yaml`): is it still in sync, and is its memory flat?

    python bench/soak.py [--minutes 60] [--warmup 10] [--every 30] [--neurons neurons.yaml] [--json OUT]
                         [--run-dir DIR]

Starts `subnet up NEURONS --no-dashboard` as an operator would, samples every process's resident
memory (from /proc) every `--every` seconds, and after `--minutes` stops it with SIGTERM (as Ctrl-C
does). Then it reads every neuron's metrics.jsonl and prints, never asserts:

- windows: trained windows (an aggregate applied), skipped ones, and those in which the neurons that
  reported a model hash did not all report the same one;
- memory per process: resident MiB at the end of the warm-up and at the end (each the median of the
  samples in a minute), the peak, and the least-squares growth in MiB per hour after the warm-up;
- restarts: what `subnet up`'s supervisor had to start again (summary.json).

`--json` writes {"minutes", "windows_trained", "windows_skipped", "windows_disagreeing",
"last_window_hashes_equal", "restarts", "processes": {NAME: {"rss_after_warmup_mb", "rss_end_mb",
"rss_peak_mb", "growth_mb_per_h"}}, "samples": [[seconds, {NAME: MiB}]]}.
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.procs import network_rss  # noqa: E402

PROG = "soak.py"


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) in MiB per hour; 0 for fewer than two points."""
    if len(points) < 2:
        return 0.0
    mean_t = statistics.fmean(t for t, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / spread * 3600


def memory_table(samples: list[tuple[float, dict[str, float]]], peaks: dict[str, float], warmup_s: float) -> dict:
    names = sorted({name for _, by in samples for name in by})
    out = {}
    for name in names:
        points = [(t, by[name]) for t, by in samples if name in by and t >= warmup_s]
        if not points:
            continue
        first = [y for t, y in points if t < points[0][0] + 60]
        last = [y for t, y in points if t > points[-1][0] - 60]
        out[name] = {"rss_after_warmup_mb": round(statistics.median(first), 1),
                     "rss_end_mb": round(statistics.median(last), 1),
                     "rss_peak_mb": round(peaks.get(name, max(y for _, y in points)), 1),
                     "growth_mb_per_h": round(slope_per_hour(points), 1)}
    return out


def window_table(run_dir: Path) -> dict:
    """Trained / skipped / disagreeing windows from every neuron's metrics.jsonl."""
    hashes: dict[int, set[str]] = {}
    trained: set[int] = set()
    seen: set[int] = set()
    for path in sorted((run_dir / "state").glob("*/metrics.jsonl")):
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            seen.add(row["window"])
            if row.get("aggregate_from") is not None:
                trained.add(row["window"])
            if row.get("model_hash"):
                hashes.setdefault(row["window"], set()).add(row["model_hash"])
    disagreeing = sorted(w for w, found in hashes.items() if len(found) > 1)
    last = max(hashes) if hashes else None
    return {"windows_trained": len(trained), "windows_skipped": len(seen - trained),
            "windows_disagreeing": disagreeing,
            "last_window_hashes_equal": bool(last is not None and len(hashes[last]) == 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="how long to run the network (default 60)")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="minutes left out of the memory trend (imports, first windows; default 10)")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between memory samples (default 30)")
    parser.add_argument("--neurons", type=Path, default=ROOT / "neurons.yaml", help="the network file")
    parser.add_argument("--run-dir", type=Path, help="run directory (default: a temporary one, removed after)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if not args.neurons.is_file():
        parser.error(f"--neurons: no such file {args.neurons}")
    if args.minutes <= 0 or args.every <= 0 or args.warmup < 0:
        parser.error("--minutes and --every must be positive, --warmup not negative")
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="tessera-soak-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir.parent / f"{run_dir.name}.up.log", "wb")   # beside the run directory, kept after it
    up = subprocess.Popen([sys.executable, "-m", "subnet.cli", "up", str(args.neurons.resolve()), "--no-dashboard",
                           "--run-dir", str(run_dir)], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    print(f"subnet up in {run_dir} (pid {up.pid}); {args.minutes:g} minutes, memory every {args.every:g} s",
          flush=True)
    started = time.monotonic()
    samples: list[tuple[float, dict[str, float]]] = []
    peaks: dict[str, float] = {}
    try:
        while time.monotonic() - started < args.minutes * 60 and up.poll() is None:
            now = round(time.monotonic() - started, 1)
            seen = network_rss(up.pid)
            samples.append((now, {name: round(rss, 1) for name, (_, rss, _) in seen.items()}))
            for name, (_, _, peak) in seen.items():
                peaks[name] = max(peaks.get(name, 0.0), peak)
            if len(samples) % 10 == 1:
                print(f"  {now / 60:5.1f} min: " + ", ".join(f"{n} {r:.0f}" for n, r in sorted(samples[-1][1].items()))
                      + " MiB", flush=True)
            time.sleep(args.every)
    except KeyboardInterrupt:
        print("interrupted: stopping the network", flush=True)
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            try:
                up.wait(timeout=120)
            except subprocess.TimeoutExpired:
                up.kill()
        log.close()
    if up.returncode not in (0, None, -signal.SIGTERM):
        print(f"{PROG}: error: subnet up exited {up.returncode} (log {log.name})", file=sys.stderr)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    result = {"minutes": round((time.monotonic() - started) / 60, 1), **window_table(run_dir),
              "restarts": summary.get("restarts", {}),
              "processes": memory_table(samples, peaks, args.warmup * 60), "samples": samples}
    print(f"windows: {result['windows_trained']} trained, {result['windows_skipped']} skipped, "
          f"{len(result['windows_disagreeing'])} with differing hashes; last window equal: "
          f"{result['last_window_hashes_equal']}; restarts {result['restarts'] or 'none'}")
    print(f"{'process':<12} {'after warm-up':>13} {'end':>8} {'peak':>8} {'MiB/h':>8}")
    for name, row in result["processes"].items():
        print(f"{name:<12} {row['rss_after_warmup_mb']:>13.1f} {row['rss_end_mb']:>8.1f} {row['rss_peak_mb']:>8.1f} "
              f"{row['growth_mb_per_h']:>8.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.run_dir is None:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0 if up.returncode in (0, -signal.SIGTERM) else 1


if __name__ == "__main__":
    sys.exit(main())

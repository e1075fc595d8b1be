"""Output of a simulation: rich table, JSON, CSV and a matplotlib figure (the I/O shell)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from amm.result import SimResult
from amm.units import RAO_PER_TAO

CSV_COLUMNS = ("netuid", "subnet", "price", "ema_price", "emission_share", "tao_emitted",
               "tao_injected", "alpha_injected", "alpha_out", "owner_paid", "miner_paid",
               "validator_paid", "pending", "protocol_alpha", "alpha_recycled", "tao_reserve",
               "alpha_reserve", "alpha_issuance")


def _units(rao: int) -> str:
    return f"{rao / RAO_PER_TAO:,.2f}"


def render_table(result: SimResult, console: Console) -> None:
    table = Table(title=f"{result.scenario}: {result.blocks:,} blocks, model {result.model}, seed {result.seed}",
                  caption="TAO and alpha in whole units; share = fraction of all TAO emitted over the run")
    for col, justify in (("netuid", "right"), ("subnet", "left"), ("price", "right"),
                         ("share", "right"), ("TAO in", "right"), ("α owner", "right"),
                         ("α miners", "right"), ("α validators", "right"), ("TAO reserve", "right"),
                         ("α reserve", "right")):
        table.add_column(col, justify=justify)
    for row in result.rows():
        table.add_row(str(row["netuid"]), row["subnet"], f"{row['price']:.6f}",
                      f"{row['emission_share']:.2%}", _units(row["tao_emitted"]),
                      _units(row["owner_paid"]), _units(row["miner_paid"]),
                      _units(row["validator_paid"]), _units(row["tao_reserve"]),
                      _units(row["alpha_reserve"]))
    console.print(table)
    console.print(
        f"total issuance {_units(result.total_issuance)} TAO, root stake {_units(result.root_stake)} TAO; "
        f"trades {result.trades_executed:,} done, {result.trades_skipped:,} skipped; "
        f"scripted events skipped {result.events_skipped}; conservation: {result.conservation}")


def write_json(result: SimResult, path: str | Path) -> None:
    Path(path).write_text(json.dumps(result.to_dict(), indent=1) + "\n")


def write_csv(result: SimResult, path: str | Path) -> None:
    """One row per subnet: the table's numbers (money in rao)."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in result.rows():
            writer.writerow(row)


def write_plot(result: SimResult, path: str | Path, max_lines: int = 8) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    share = result.emission_share()
    order = np.argsort(-share, kind="stable")[:max_lines]
    days = result.sample_blocks / 7200.0
    fig, axes = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    for i in order:
        name = result.names[i]
        axes[0].plot(days, result.series_price[:, i], label=name)
        axes[1].plot(days, result.series_share[:, i], label=name)
        # alpha paid so far, valued at the spot price of the sample (mark to market)
        axes[2].plot(days, result.series_paid[:, i] * result.series_price[:, i] / RAO_PER_TAO, label=name)
    axes[0].set_ylabel("price (TAO / alpha)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("TAO emission share")
    axes[2].set_ylabel("payouts so far, TAO at spot")
    axes[2].set_xlabel("day")
    shown = f"top {len(order)} of {len(result.names)} subnets by emission share" \
        if len(order) < len(result.names) else f"{len(result.names)} subnets"
    axes[0].set_title(f"{result.scenario} - model {result.model}, seed {result.seed} ({shown})")
    axes[0].legend(loc="best", fontsize="small", ncol=2)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- sweeps (amm.sweep) ---------------------------------------------------------------------------


def _band(row: dict, label: str, fmt) -> str:
    return f"{fmt(row[label + '_median'])} [{fmt(row[label + '_p10'])}-{fmt(row[label + '_p90'])}]"


def top_subnets(point: dict, limit: int | None) -> list[str]:
    """The grid point's subnets, largest median emission share first, at most ``limit``."""
    names = sorted(point["subnets"], key=lambda n: -point["subnets"][n]["share_median"])
    return names if limit is None else names[:limit]


def render_sweep(sweep: dict, console: Console, limit: int | None = 24) -> None:
    """A table per grid point: median [10%-90%] over seeds of each subnet's final price, share of
    the run's TAO emission, and alpha paid to owner, miners and validators."""
    for point in sweep["grid"]:
        described = ", ".join(f"{k}={v}" for k, v in point["settings"].items())
        shown = top_subnets(point, limit)
        more = len(point["subnets"]) - len(shown)
        table = Table(title=f"{sweep['scenario']}: {described} ({point['runs']} seeds)",
                      caption="median [10%-90%] over seeds; share = of all TAO emitted over the run; "
                              "payouts in alpha" + (f"; {more} more subnets in --json" if more else ""))
        for col in ("subnet", "price", "share", "α owner", "α miners", "α validators"):
            table.add_column(col, justify="left" if col == "subnet" else "right")
        for name in shown:
            row = point["subnets"][name]
            table.add_row(name, _band(row, "price", lambda x: f"{x:.5f}"), _band(row, "share", lambda x: f"{x:.2%}"),
                          *(_band(row, key, lambda x: f"{x / RAO_PER_TAO:,.0f}")
                            for key in ("owner_paid", "miner_paid", "validator_paid")))
        console.print(table)
        console.print(f"conservation: {point['conservation']}")


def write_sweep_plot(sweep: dict, path: str | Path, max_lines: int = 6) -> None:
    """Per grid point (a column), the median price and emission share over time of its largest
    subnets, each with its 10-90% band over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = sweep["grid"]
    shown = list(dict.fromkeys(name for point in grid for name in top_subnets(point, max_lines)))
    palette = plt.get_cmap("tab10" if len(shown) <= 10 else "tab20")
    colours = {name: palette(k % palette.N) for k, name in enumerate(shown)}   # one colour per subnet, all columns
    fig, axes = plt.subplots(2, len(grid), figsize=(4.5 * len(grid) + 1, 8), sharex=True, squeeze=False)
    for column, point in enumerate(grid):
        series = point["series"]
        days = np.asarray(series["block"]) / 7200.0
        names = list(point["subnets"])
        for name in top_subnets(point, max_lines):
            i = names.index(name)
            color = colours[name]
            for row, key in ((0, "price"), (1, "share")):
                p10, p50, p90 = series[key][0][:, i], series[key][1][:, i], series[key][2][:, i]
                axes[row][column].plot(days, p50, label=name, color=color)
                axes[row][column].fill_between(days, p10, p90, color=color, alpha=0.2)
        axes[0][column].set_title(", ".join(f"{k}={v}" for k, v in point["settings"].items()), fontsize="medium")
        axes[0][column].set_yscale("log")
        axes[1][column].set_xlabel("day")
        axes[0][column].legend(loc="best", fontsize="x-small")
    axes[0][0].set_ylabel("price (TAO / alpha), median and 10-90%")
    axes[1][0].set_ylabel("TAO emission share, median and 10-90%")
    fig.suptitle(f"{sweep['scenario']}: {sweep['seeds']} seeds per setting")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)

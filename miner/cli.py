"""`miner run`: the miner process (see miner/loop.py)."""
from __future__ import annotations

import sys

from subnet.node.cli import main_for


def _miner(settings, log):
    from miner.loop import Miner
    return Miner(settings, log)


def main(argv: list[str] | None = None) -> int:
    return main_for("miner", "Train shards of the global model and upload compressed pseudo-gradients.", _miner, argv)


if __name__ == "__main__":
    sys.exit(main())

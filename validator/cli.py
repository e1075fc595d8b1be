"""`validator run`: the validator process (see validator/loop.py)."""
from __future__ import annotations

import sys

from subnet.node.cli import main_for


def _validator(settings, log):
    from validator.loop import Validator
    return Validator(settings, log)


def main(argv: list[str] | None = None) -> int:
    return main_for("validator", "Score miners' uploads, aggregate the best into the next model, set weights.",
                    _validator, argv)


if __name__ == "__main__":
    sys.exit(main())

"""The ``ecisem`` command: one sub-command per module in :mod:`ecisem_core.commands`.

Exit codes: 0 ok, 2 bad input (the message names file, line and problem), 1 internal error.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ecisem_core.errors import InputError

COMMANDS = ("score", "report", "flag", "mine", "validate", "embed")
"""Sub-commands, each a module ``ecisem_core.commands.<name>`` with ``add_parser`` and ``run``."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecisem",
        description="Score hard-negative sources for dense-retriever training with ECI_sem and classic ECI.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"ecisem_core.commands.{name}")
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except InputError as exc:
        print(f"ecisem: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ecisem: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the contract is exit 1 with a message
        print(f"ecisem: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

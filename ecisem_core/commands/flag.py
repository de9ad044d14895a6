"""`ecisem flag` (being built; see the open issue)."""
from __future__ import annotations

import argparse


def add_parser(sub: "argparse._SubParsersAction") -> argparse.ArgumentParser:
    return sub.add_parser("flag", help="(not built yet)")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError("ecisem flag is not built yet")

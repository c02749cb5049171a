"""``hsi-anomaly`` entry point: builds the parser from the sub-command modules and reports errors."""

from __future__ import annotations

import argparse
import importlib
import sys

from napari_hsi_anomaly import __version__
from napari_hsi_anomaly.core.errors import HsiAnomalyError

# Each module defines ``register(subparsers)``; each sub-parser sets ``func=callable(args) -> int``.
COMMAND_MODULES = (
    "napari_hsi_anomaly.cli.io_commands",  # view, info
    "napari_hsi_anomaly.cli.sample_commands",  # sample
    "napari_hsi_anomaly.cli.model_commands",  # train, features
    "napari_hsi_anomaly.cli.score_commands",  # score, evaluate, synth
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hsi-anomaly",
        description="Anomaly detection in hyperspectral and multispectral cubes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a sub-command; user errors go to stderr as one line with exit code 1."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except HsiAnomalyError as exc:
        print(f"hsi-anomaly {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"hsi-anomaly {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

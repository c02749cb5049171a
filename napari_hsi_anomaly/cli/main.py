"""``hsi-anomaly`` entry point: builds the parser from the sub-command modules and reports errors.

Start-up is kept short: only the module of the command being run is imported (``hsi-anomaly --help``
lists every command from ``COMMANDS`` without importing any), and command modules import heavy
libraries (torch, hdbscan, ...) inside the functions that need them. Every error reaches the user as
one line on stderr with exit code 1.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import sys

from napari_hsi_anomaly import __version__
from napari_hsi_anomaly.core.errors import HsiAnomalyError

# command -> (module defining ``register(subparsers)``, one-line help for the command list).
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("napari_hsi_anomaly.cli.io_commands", "describe a cube file (shape, bands, wavelengths, ...)"),
    "view": ("napari_hsi_anomaly.cli.io_commands",
             "open napari with a cube (or the sample scene) and the docks"),
    "sample": ("napari_hsi_anomaly.cli.sample_commands",
               "write generated multispectral scenes with planted anomalies and their ground truth"),
    "train": ("napari_hsi_anomaly.cli.model_commands", "train a 3-D CAE on one or more cubes (same bands)"),
    "features": ("napari_hsi_anomaly.cli.model_commands",
                 "extract CAE features (f1-f4 per window/section, pixel)"),
    "score": ("napari_hsi_anomaly.cli.score_commands", "anomaly score map of a cube (float32 in [0, 1])"),
    "evaluate": ("napari_hsi_anomaly.cli.score_commands",
                 "TPR, FNR, precision, F-score and AUC of a score map"),
    "synth": ("napari_hsi_anomaly.cli.score_commands", "plant synthetic anomalies (thesis recipe) in a cube"),
    "fit": ("napari_hsi_anomaly.cli.profile_commands",
            "fit a normal model (profile) on reference cubes; score others with `score --profile`"),
    "batch": ("napari_hsi_anomaly.cli.profile_commands",
              "score many cubes (files, folders, globs) on dask.distributed; summary.csv"),
}
# A new command: add it here (and to its module's ``register``) so ``--help`` lists it without imports.
COMMAND_MODULES = tuple(dict.fromkeys(module for module, _ in COMMANDS.values()))
DEBUG_ENV = "HSI_ANOMALY_DEBUG"


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter that leaves lazy choices (``cli.common.LazyChoices``) unread unless the help
    text names ``%(choices)s``: Python <= 3.12 joins every option's choices while writing ``--help``,
    which would import torch for ``--preset`` and make every ``--help`` take seconds."""

    def _expand_help(self, action: argparse.Action) -> str:
        if getattr(action.choices, "lazy", False) and "%(choices)" not in (action.help or ""):
            action = copy.copy(action)
            action.choices = None
        return super()._expand_help(action)


class Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (which option, what is wrong, where to look) and exit 1."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(1, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def _requested(argv: list[str]) -> str | None:
    """The command named on the command line (the first argument that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = "*") -> argparse.ArgumentParser:
    """The parser; ``command="*"`` registers every command fully, a command name only that one's
    module (the others are listed by name and help only), ``None`` none fully."""
    parser = Parser(
        prog="hsi-anomaly",
        description="Anomaly detection in hyperspectral and multispectral cubes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = COMMAND_MODULES if command == "*" else (
        (COMMANDS[command][0],) if command in COMMANDS else ()
    )
    for module in modules:
        importlib.import_module(module).register(sub)
    registered = set(sub.choices)
    for name, (_, text) in COMMANDS.items():  # placeholders: name and help in the command list
        if name not in registered:
            sub.add_parser(name, help=text)
    return parser


class _LineTracker:
    """stderr, remembering whether the last write ended a line (a ``\\r`` progress line may be open)."""

    def __init__(self, stream) -> None:
        self._stream, self.at_line_start = stream, True

    def write(self, text: str) -> int:
        if text:
            self.at_line_start = text.endswith("\n")
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    """Run a sub-command; user errors go to stderr as one line with exit code 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    requested = _requested(argv)
    # --help / no command: names only; a known command: its module; anything else: every module.
    parser = build_parser(requested if requested in COMMANDS else (None if requested is None else "*"))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (1, already printed)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return _report(args, f"hsi-anomaly {args.command}")


def _run(args: argparse.Namespace, name: str) -> int:
    """The command, with stderr tracked so that an error never lands on an open progress line."""
    stderr = sys.stderr
    sys.stderr = tracker = _LineTracker(stderr)
    try:
        return int(args.func(args) or 0)
    except BaseException:
        if not tracker.at_line_start:
            stderr.write("\n")  # end an open progress line: the message gets a line of its own
        raise
    finally:
        sys.stderr = stderr


def _report(args: argparse.Namespace, name: str) -> int:
    """Run the command; every error becomes one line on stderr."""
    try:
        return _run(args, name)
    except HsiAnomalyError as exc:
        print(f"{name}: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{name}: error: out of memory; use a smaller input or options "
              "(or lower HSI_ANOMALY_MEMORY_BUDGET so the checks refuse earlier).", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"{name}: error: {_one_line(exc.strerror or exc)}{where}; check the path, its "
              "permissions and the free disk space.", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, never a traceback
        if os.environ.get(DEBUG_ENV):
            raise
        print(f"{name}: internal error: {type(exc).__name__}: {_one_line(exc)[:300]} (a bug: please "
              f"report it; set {DEBUG_ENV}=1 to see the traceback).", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

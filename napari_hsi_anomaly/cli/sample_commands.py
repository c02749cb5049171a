"""Sub-commands (placeholder: filled in by its owner)."""

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to ``sub``."""

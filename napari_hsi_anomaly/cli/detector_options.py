"""Detector options of ``score``, ``fit`` and ``batch``, generated from the ``Param`` declarations.

Every parameter any registered detector declares becomes one option (``p_min`` -> ``--p-min``), with
its type and choices and default None (= the detector's own). ``params_from_args`` is the one place
that turns the options given into a detector's parameters (``core.pipeline.detector_kwargs``): an option
the chosen method does not declare is one clear line.
"""

from __future__ import annotations

import argparse
from typing import Any

PREFIX = "param_"


def add_detector_options(p: argparse.ArgumentParser) -> None:
    """One option per declared detector parameter (``dest`` ``param_<name>``, default None)."""
    from napari_hsi_anomaly.core.pipeline import declared_params

    for name, q in declared_params().items():
        kind = str if q.kind is bool else q.kind
        extra: dict[str, Any] = {}
        text = q.help
        if q.choices is not None:
            extra["choices"] = tuple(q.choices)
            text += f"; one of {', '.join(map(str, q.choices))}"
        p.add_argument(q.option, dest=PREFIX + name, type=kind, default=None, metavar=name.upper(),
                       help=f"{text} (detectors that declare it; default: the detector's own)"
                       .replace("%", "%%"), **extra)


def given_params(args: argparse.Namespace) -> dict[str, Any]:
    """The detector options given on the command line, by parameter name."""
    return {k[len(PREFIX):]: v for k, v in vars(args).items() if k.startswith(PREFIX) and v is not None}


def params_from_args(args: argparse.Namespace, method: str) -> dict[str, Any]:
    """The given options as ``method``'s parameters, validated (``Param.validate``)."""
    from napari_hsi_anomaly.core.pipeline import detector_kwargs

    params = detector_kwargs(method, given_params(args))
    if params:
        from napari_hsi_anomaly.core.detectors import get_detector

        get_detector(method)(**params)  # a bad value is refused before any cube is read
    return params

"""Without torch (the ``[cae]`` extra), everything but the CAE works, and the CAE says what to install.

Each check runs in a fresh interpreter whose ``import torch`` is blocked by a meta-path finder, as on a
machine where torch was never installed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = textwrap.dedent('''
    import sys

    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, _NoTorch())
''')


def _run(body: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen", HSI_ANOMALY_SYNC_WORKERS="1")
    script = BLOCK + textwrap.dedent(body) + '\nassert "torch" not in sys.modules, "torch was imported"\n'
    return subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)


def _cube(tmp_path: Path) -> Path:
    import numpy as np

    rng = np.random.default_rng(0)
    cube = rng.normal(1000, 50, (6, 40, 40)).astype("float32")
    cube[:, 10:12, 20:22] += 800  # a small anomaly
    path = tmp_path / "c.npy"
    np.save(path, cube)
    return path


@pytest.mark.slow
def test_default_detector_cli_batch_and_widgets_without_torch(tmp_path):
    _cube(tmp_path)
    res = _run('''
        import numpy as np
        from napari_hsi_anomaly.core.cube import Cube
        from napari_hsi_anomaly.core.detectors import DEFAULT_METHOD, detector_names, get_detector
        from napari_hsi_anomaly.core.io import read_cube

        assert "glosh" in detector_names()  # the CAE detectors stay listed
        cube = read_cube("c.npy", layout="bands-first")
        det = get_detector(DEFAULT_METHOD)().fit([cube]).score(cube)
        assert det.score_map.shape == (40, 40) and np.isfinite(det.score_map).all()

        from napari_hsi_anomaly.cli.main import main
        assert main(["score", "c.npy", "--layout", "bands-first", "--out", "s.npy"]) == 0
        assert np.load("s.npy").shape == (40, 40)

        from napari_hsi_anomaly.core.batch import expand_inputs, iter_batch
        from napari_hsi_anomaly.core.progress import run
        rows = run(iter_batch(expand_inputs(["c.npy"]), "out", processes=False, workers=1,
                              layout="bands-first"))
        assert len(rows) == 1 and not rows[0].get("error"), rows

        import importlib
        for mod in ("cube_widget", "detect_widget", "inspect_widget", "detect_params", "reference_panel",
                    "detect_jobs", "state", "workers"):
            importlib.import_module(f"napari_hsi_anomaly._widgets.{mod}")
        print("OK")
    ''', tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "OK" in res.stdout


@pytest.mark.slow
def test_cae_method_without_torch_says_what_to_install(tmp_path):
    _cube(tmp_path)
    res = _run('''
        from napari_hsi_anomaly.cli.main import main
        code = main(["score", "c.npy", "--layout", "bands-first", "--method", "glosh", "--out", "s.npy"])
        assert code == 1, code
        assert main(["train", "--help"]) == 0
        from napari_hsi_anomaly.core.errors import HsiAnomalyError
        try:
            import napari_hsi_anomaly.core.model  # noqa: F401
        except HsiAnomalyError as exc:
            print("MSG", exc)
    ''', tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    err = [ln for ln in res.stderr.splitlines() if "error" in ln]
    assert len(err) == 1, res.stderr
    assert "needs the CAE extra: pip install 'napari-hsi-anomaly[cae]'" in err[0]
    assert "Traceback" not in res.stderr
    assert "needs the CAE extra" in res.stdout

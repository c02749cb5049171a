"""core.guards: memory budget, path checks, option ranges, CAE size estimates; CLI start-up imports."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from napari_hsi_anomaly.core import guards
from napari_hsi_anomaly.core.errors import HsiAnomalyError


@pytest.mark.parametrize(
    ("text", "nbytes"),
    [("8G", 8 * 1024**3), ("512M", 512 * 1024**2), ("1.5GB", int(1.5 * 1024**3)), ("2048", 2048),
     ("1k", 1024), ("3 GiB", 3 * 1024**3)],
)
def test_parse_size(text, nbytes):
    assert guards.parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["", "abc", "-1G", "0", "1X", "nan"])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError):
        guards.parse_size(text)


def test_memory_budget_default_and_env(monkeypatch):
    monkeypatch.delenv(guards.BUDGET_ENV, raising=False)
    assert guards.memory_budget() == int(guards.machine_memory() * 0.5)
    monkeypatch.setenv(guards.BUDGET_ENV, "2G")
    assert guards.memory_budget() == 2 * 1024**3
    monkeypatch.setenv(guards.BUDGET_ENV, "lots")
    with pytest.raises(HsiAnomalyError, match="HSI_ANOMALY_MEMORY_BUDGET"):
        guards.memory_budget()


def test_check_allocation(monkeypatch):
    monkeypatch.setenv(guards.BUDGET_ENV, "1M")
    guards.check_allocation(1000, "a small thing")
    with pytest.raises(guards.MemoryBudgetError, match=r"a big thing needs about 2\.0 MB.*1\.0 MB. Use less"):
        guards.check_allocation(2 * 1024**2, "a big thing", hint="use less")
    with pytest.raises(guards.MemoryBudgetError, match="unbounded"):
        guards.check_allocation(float("inf"), "x")


def test_check_output_path(tmp_path):
    inp = tmp_path / "cube.hdr"
    inp.write_text("ENVI\n")
    (tmp_path / "cube.img").write_bytes(b"\0")
    ok = guards.check_output_path(tmp_path / "s.npy", inputs=[inp], exts=(".npy",))
    assert ok == tmp_path.resolve() / "s.npy"
    for bad, match in [
        (tmp_path / "cube.img", "overwrite the input"),
        (tmp_path / "cube.hdr", "overwrite the input"),
        (tmp_path / "s.txt", "unknown extension"),
        (tmp_path / "nope" / "s.npy", "does not exist"),
        (tmp_path, "existing folder"),
    ]:
        with pytest.raises(HsiAnomalyError, match=match):
            guards.check_output_path(bad, inputs=[inp], exts=(".npy", ".img", ".hdr"))
    with pytest.raises(HsiAnomalyError, match="another output"):
        guards.check_output_path(tmp_path / "m.img", others=[tmp_path / "m.hdr"])


def test_check_output_path_through_symlinks_and_tilde(tmp_path, monkeypatch):
    real = tmp_path / "real.npy"
    np.save(real, np.zeros(2))
    link = tmp_path / "link.npy"
    link.symlink_to(real)
    assert guards.check_output_path(link) == real.resolve()
    with pytest.raises(HsiAnomalyError, match="overwrite the input"):
        guards.check_output_path(link, inputs=[real])
    monkeypatch.setenv("HOME", str(tmp_path))
    assert guards.check_output_path("~/x.npy") == tmp_path.resolve() / "x.npy"


def test_check_input_path(tmp_path):
    with pytest.raises(HsiAnomalyError, match="does not exist"):
        guards.check_input_path(tmp_path / "missing.npy")
    with pytest.raises(HsiAnomalyError, match="is a folder"):
        guards.check_input_path(tmp_path)
    fifo = tmp_path / "f.npy"
    os.mkfifo(fifo)
    with pytest.raises(HsiAnomalyError, match="FIFO"):
        guards.check_input_path(fifo)


def test_check_output_dir(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(HsiAnomalyError, match="not a folder"):
        guards.check_output_dir(tmp_path / "f")
    assert guards.check_output_dir(tmp_path / "a" / "b") == tmp_path.resolve() / "a" / "b"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: guards.check_threshold(1.5), ">= 0 and <= 1"),
        (lambda: guards.check_threshold(-0.5), ">= 0 and <= 1"),
        (lambda: guards.check_threshold(float("nan")), "finite"),
        (lambda: guards.check_p_min(1), ">= 2"),
        (lambda: guards.check_p_min(101, 100), "larger than the 100 points"),
        (lambda: guards.check_p_min(2.5), "whole number"),
        (lambda: guards.check_min_samples(0), ">= 1"),
        (lambda: guards.check_min_samples(100, 100), "smaller than the 100 points"),
        (lambda: guards.check_number(-1, "--lr", minimum=0, exclusive_min=True), "> 0"),
    ],
)
def test_number_checks(call, match):
    with pytest.raises(HsiAnomalyError, match=match):
        call()


def test_number_checks_pass():
    assert guards.check_threshold(0.7) == 0.7
    assert guards.check_p_min(None, 10) is None
    assert guards.check_p_min(5, 10) == 5


def test_cae_parameter_count_matches_torch():
    import torch

    from napari_hsi_anomaly.core.model import CAE, PRESETS

    for name, config in PRESETS.items():
        net = CAE(config)
        n = sum(p.numel() for p in net.parameters())
        assert guards.cae_parameter_count(config.kernels, config.kernel_size, config.bias) == n, name
    del torch


def test_cae_activation_estimate_is_an_upper_bound():
    """The estimate is at least the bytes of the conv outputs of one forward pass."""
    import torch

    from napari_hsi_anomaly.core.model import CAE, PRESETS

    config = PRESETS["fast"].with_bands(6)
    net = CAE(config)
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel()))
             for m in net.modules() if isinstance(m, torch.nn.Conv3d)]
    with torch.no_grad():
        net(torch.zeros(2, 1, config.net_bands, 32, 32))
    for h in hooks:
        h.remove()
    est = guards.cae_activation_bytes(config.kernels, config.pooling, config.net_bands, 32, 2, training=False)
    assert est >= 4 * sum(sizes)
    assert est < 20 * 4 * sum(sizes)


HEAVY = ("torch", "hdbscan", "sklearn", "numba", "napari", "dask", "pandas", "scipy.stats")


def _imported_after(code: str) -> list[str]:
    probe = (
        f"import sys\n{code}\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [m for m in out.stdout.strip().split(",") if m]


def test_cli_import_is_light():
    assert _imported_after("import napari_hsi_anomaly.cli.main") == []


def test_help_and_info_import_no_heavy_module(tmp_path):
    np.save(tmp_path / "c.npy", np.random.default_rng(0).random((8, 8, 3), dtype=np.float32))
    code = (
        "from napari_hsi_anomaly.cli.main import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        f"    assert main(['info', {str(tmp_path / 'c.npy')!r}]) == 0\n"
    )
    assert _imported_after(code) == []


def test_core_guards_and_nodata_import_light():
    assert _imported_after("import napari_hsi_anomaly.core.guards, napari_hsi_anomaly.core.nodata") == []

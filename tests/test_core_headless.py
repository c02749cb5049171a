"""The core library must import and run with no Qt and no napari (scripts, CLI, servers)."""

import subprocess
import sys


def test_core_imports_without_qt() -> None:
    code = (
        "import sys, pkgutil, importlib\n"
        "import napari_hsi_anomaly.core as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'napari_hsi_anomaly.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "import napari_hsi_anomaly.cli.main as cli\n"
        "cli.build_parser()\n"
        "bad = [n for n in sys.modules if n.split('.')[0] in "
        "('PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'qtpy', 'napari', 'magicgui')]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")

"""The CLI run in-process, and the one-clear-line check every bad-input test makes."""

from __future__ import annotations

from napari_hsi_anomaly.cli.main import main


def run(argv, capsys) -> tuple[int, str, str]:
    """``hsi-anomaly ARGV`` in this process: (exit code, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def one_line_error(rc: int, err: str, *needles: str) -> None:
    """Exit 1 with one line on stderr (notes and warnings aside), no traceback, naming ``needles``."""
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("note:", "warning:"))]
    assert rc == 1, err
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)

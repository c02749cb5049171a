"""ENVI header text: a tolerant parser and a writer (no spectral-python needed for either)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from napari_hsi_anomaly.core.errors import CubeReadError

# ENVI "data type" codes <-> numpy dtypes (byte order applied separately).
ENVI_DTYPES: dict[int, str] = {
    1: "u1",
    2: "i2",
    3: "i4",
    4: "f4",
    5: "f8",
    6: "c8",
    9: "c16",
    12: "u2",
    13: "u4",
    14: "i8",
    15: "u8",
}
DTYPE_TO_ENVI: dict[str, int] = {v: k for k, v in ENVI_DTYPES.items()}

_LIST_KEYS_KEEP_TEXT = {"description"}


def parse_header_text(text: str, name: str = "header") -> dict[str, str | list[str]]:
    """Parse ENVI header text into ``{lower-case key: str | list[str]}``.

    Tolerant: any case for keys, ``{...}`` values over several lines, comment lines (``;``), blank
    lines, Windows line ends. The first non-blank line must be ``ENVI``.
    """
    text = text.lstrip("\ufeff")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if not first.upper().startswith("ENVI"):
        raise CubeReadError(f"{name} is not an ENVI header (its first line is not 'ENVI').")
    out: dict[str, str | list[str]] = {}
    i = 1 + next(k for k, ln in enumerate(lines) if ln.strip())
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith(";") or "=" not in line:
            continue
        key, _, val = line.partition("=")
        key = " ".join(key.strip().lower().split())
        val = val.strip()
        if val.startswith("{"):
            buf = val
            while "}" not in buf and i < len(lines):
                buf += "\n" + lines[i].strip()
                i += 1
            if "}" not in buf:
                raise CubeReadError(f"{name}: the value of '{key}' opens '{{' but never closes it.")
            inner = buf[1 : buf.rindex("}")]
            if key in _LIST_KEYS_KEEP_TEXT:
                out[key] = inner.strip()
            else:
                items = [v.strip() for v in inner.split(",")] if inner.strip() else []
                while items and not items[-1]:  # a trailing comma
                    items.pop()
                out[key] = items
        else:
            out[key] = val
    return out


def read_header(path: Path) -> dict[str, str | list[str]]:
    """Read and parse an ENVI header file; ``CubeReadError`` for binary or non-ENVI files."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CubeReadError(f"Cannot read {path.name}: {exc.strerror or exc}.") from exc
    if b"\x00" in raw[:4096]:
        raise CubeReadError(f"{path.name} is not an ENVI header (it is a binary file).")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # UTF-8 byte order mark
    return parse_header_text(raw.decode("latin-1"), path.name)


def looks_like_envi_header(path: Path) -> bool:
    """Whether the file starts with ``ENVI`` (cheap: reads 64 bytes)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return False
    return head.removeprefix(b"\xef\xbb\xbf").lstrip().upper().startswith(b"ENVI")


def _clean(text: str) -> str:
    """A value safe inside ``{...}`` lists: no commas or braces."""
    return re.sub(r"[{}]", "", str(text)).replace(",", ";").strip()


def format_header(fields: dict[str, object]) -> str:
    """ENVI header text for ``fields`` (values: scalars, strings, or sequences written as ``{...}``)."""
    out = ["ENVI"]
    for key, val in fields.items():
        if val is None:
            continue
        if key == "description":
            out.append(f"description = {{{_clean(val)}}}")
        elif isinstance(val, (list, tuple, np.ndarray)):
            items = [_fmt_scalar(v) for v in val]
            out.append(f"{key} = {{" + ", ".join(items) + "}")
        else:
            out.append(f"{key} = {_fmt_scalar(val)}")
    return "\n".join(out) + "\n"


def _fmt_scalar(v: object) -> str:
    if isinstance(v, (float, np.floating)):
        return repr(float(v)) if np.isfinite(v) else str(float(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return _clean(str(v))


def envi_dtype_code(dtype: np.dtype) -> tuple[int, np.dtype]:
    """The ENVI code for ``dtype`` and the (little-endian) dtype actually written."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        dt = np.dtype("u1")
    elif dt == np.dtype("i1"):
        dt = np.dtype("i2")
    elif dt.kind == "f" and dt.itemsize < 4:
        dt = np.dtype("f4")
    key = dt.newbyteorder("=").str.lstrip("<>|=")
    if key not in DTYPE_TO_ENVI:
        raise ValueError(f"ENVI cannot store data of type {dt}.")
    return DTYPE_TO_ENVI[key], dt.newbyteorder("<")

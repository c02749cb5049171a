"""A fitted ``GloshScorer`` as plain arrays + JSON meta (safetensors + JSON in profiles; no pickle)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from napari_hsi_anomaly.core.errors import HsiAnomalyError

if TYPE_CHECKING:
    from napari_hsi_anomaly.core.scoring.glosh.scorer import GloshScorer

STATE_FORMAT = 1  # GloshScorer.state() layout version
ROW_ARRAYS = ("finite", "drawn", "drawn_fit", "rest", "rest_nb", "rest_lam", "rest_exact", "rest_same")


def scorer_state(self: GloshScorer, rows: bool = True) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``GloshScorer.state``: the arrays and meta ``restore_scorer`` needs."""
    arrays = {"fit_x": self._fit_x, "core": self._core, "counts": self._counts,
              "lo": self._lo, "span": self._span, "const": self._const.astype(np.uint8)}
    if self._tree is not None:
        arrays["tree"] = self._tree
    if rows and self._has_rows:
        arrays.update(finite=self.finite.astype(np.uint8), drawn=self._drawn, drawn_fit=self._drawn_fit,
                      rest=self._rest, rest_nb=self._rest_nb, rest_lam=self._rest_lam,
                      rest_exact=self._rest_exact.astype(np.uint8), rest_same=self._rest_same)
    meta = {"format": STATE_FORMAT, "min_samples": self.min_samples, "k": self._k, "scale": self.scale,
            "max_fit": self.max_fit, "seed": self.seed, "n_points": self.n_points, "dims": self.dims,
            "n_finite": self.n_finite, "n_drawn": self.n_drawn, "n_fit": self.n_fit,
            "cache_size": self._cache_size, "rows": bool(rows and self._has_rows)}
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}, meta


def restore_scorer(self: GloshScorer, arrays: dict[str, np.ndarray], meta: dict) -> GloshScorer:
    """Fill a bare ``GloshScorer`` (``cls.__new__``) from ``scorer_state`` output; a damaged state
    raises one clear ``HsiAnomalyError``."""
    try:
        if int(meta["format"]) > STATE_FORMAT:
            raise HsiAnomalyError(f"GLOSH state format {meta['format']} is newer than this version "
                                  f"reads ({STATE_FORMAT}): update napari-hsi-anomaly.")
        for key in ("min_samples", "k", "max_fit", "seed", "n_points", "dims", "n_finite", "n_drawn",
                    "n_fit", "cache_size"):
            setattr(self, "_k" if key == "k" else ("_cache_size" if key == "cache_size" else key),
                    int(meta[key]))
        self.scale = bool(meta["scale"])
        self._init_caches()
        self._fit_x = np.asarray(arrays["fit_x"], dtype=np.float64)
        self._core = np.asarray(arrays["core"], dtype=np.float64)
        self._counts = np.asarray(arrays["counts"], dtype=np.int64)
        self._lo = np.asarray(arrays["lo"], dtype=np.float64)
        self._span = np.asarray(arrays["span"], dtype=np.float64)
        self._const = np.asarray(arrays["const"]).astype(bool)
        self._tree = np.asarray(arrays["tree"], dtype=np.float64) if "tree" in arrays else None
        self._has_rows = bool(meta.get("rows"))
        if self._has_rows:
            a = {k: np.asarray(arrays[k]) for k in ROW_ARRAYS}
            self.finite, self._rest_exact = a["finite"].astype(bool), a["rest_exact"].astype(bool)
            self._drawn, self._drawn_fit = a["drawn"].astype(np.int64), a["drawn_fit"].astype(np.int64)
            self._rest, self._rest_nb = a["rest"].astype(np.int64), a["rest_nb"].astype(np.int64)
            self._rest_lam = a["rest_lam"].astype(np.float64)
            self._rest_same = a["rest_same"].astype(np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise HsiAnomalyError(f"GLOSH state is incomplete or damaged ({exc}): "
                              "fit the profile again.") from exc
    shapes_ok = (self._fit_x.shape == (self.n_fit, self.dims) and self._core.shape == (self.n_fit,)
                 and self._counts.shape == (self.n_fit,) and self._lo.shape == (self.dims,)
                 and (self._tree is None or self._tree.shape == (self.n_fit - 1, 4)))
    if not shapes_ok:
        raise HsiAnomalyError("GLOSH state arrays do not fit together: the profile is damaged; "
                              "fit it again.")
    return self

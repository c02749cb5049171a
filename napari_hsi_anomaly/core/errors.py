"""Exceptions whose message is shown to the user as is (napari notification, CLI stderr)."""


class HsiAnomalyError(Exception):
    """Base class: the message is a plain sentence a user can act on."""


class CubeReadError(HsiAnomalyError):
    """A file could not be read as a cube (names the file and what is wrong)."""


class ShapeError(HsiAnomalyError):
    """Arrays of the wrong shape: a 2-D array, a cube smaller than a window, a band count mismatch."""


class ModelError(HsiAnomalyError):
    """A model cannot be built, loaded or applied (wrong band count, wrong version, bad file)."""


class CancelledError(HsiAnomalyError):
    """The user cancelled a long computation."""


CAE_EXTRA_HINT = "needs the CAE extra: pip install 'napari-hsi-anomaly[cae]'"


class MissingExtraError(HsiAnomalyError, ImportError):
    """An optional part is not installed (torch for the CAE detectors): one line saying how to add it.
    Also an ``ImportError``, so code that probes an import still catches it."""

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

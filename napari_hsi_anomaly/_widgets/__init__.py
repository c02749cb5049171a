"""napari dock widgets (thin: collect parameters, start workers, turn results into layers)."""

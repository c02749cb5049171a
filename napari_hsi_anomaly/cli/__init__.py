"""Command-line interface ``hsi-anomaly``: one module per group of sub-commands."""

"""Rows, and how they compare: cells, pairing, tolerances, diffs."""

"""The pytest plugin: hooks and options, the per-run state, fixtures, items."""

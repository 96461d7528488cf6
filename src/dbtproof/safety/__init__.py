"""What keeps a run in its namespace, its rights small and its secrets unseen."""

"""The dbt project: where it is, its targets, nodes and what changed."""

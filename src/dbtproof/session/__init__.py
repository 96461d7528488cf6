"""One dbt session: its parse, connections, runner, and what workers share."""

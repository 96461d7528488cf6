"""Agents that write tests without touching production or seeing a secret (issue 25)."""

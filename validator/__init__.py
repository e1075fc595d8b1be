"""Tessera validator process (arrives with its issue)."""

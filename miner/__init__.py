"""Tessera miner process (arrives with its issue)."""

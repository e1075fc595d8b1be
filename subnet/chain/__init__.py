"""Chain: Yuma consensus and (later) the local dev chain and its client."""

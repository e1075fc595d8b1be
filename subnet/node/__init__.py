"""The I/O shells shared by the miner and validator processes (local state on disk, ...); the
protocol itself stays in pure functions elsewhere (subnet/protocol/, subnet/wire/)."""

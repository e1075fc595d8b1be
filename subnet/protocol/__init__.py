"""The protocol of one window, as pure pieces the miner and validator processes compose.

settings.py  the consensus identity of a preset (hash of everything nodes must agree on)
clock.py     blocks and windows: window of a block, first/last block, upload and aggregate deadlines
window.py    the window's steps: inner phase, compression, outer step, aggregate application

docs/architecture.md, section "One window", walks through them in order.
"""

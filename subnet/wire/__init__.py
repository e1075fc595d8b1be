"""Wire format: every object one node reads from another. Nothing here unpickles.

signing.py    canonical JSON (also the chain's call encoding), signed safetensors, signed JSON
names.py      every object name in a bucket (gradients, aggregates, scores, checkpoints, datasets)
gradient.py   a miner's signed gradient: encode, and decode against required expectations
aggregate.py  the lead's signed, hash-linked aggregate, its manifest, and lineage checks

Importing this package loads nothing: the chain client imports `subnet.wire.signing` alone, without
torch or the codec.
"""

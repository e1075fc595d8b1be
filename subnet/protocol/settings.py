"""The consensus identity of a preset.

Two nodes follow the same lineage only if they agree on the model, the codec, the outer step and the
protocol settings (and the seed that builds the genesis model). `consensus_hash` covers exactly
those; `genesis_anchor` binds it to the genesis model, and is what the first aggregate links to as
its previous aggregate, so a node with other settings refuses the lineage (`broken_lineage`) instead
of silently following it. The inner optimiser, EF decay and the train-sim baseline are each miner's
own business and are left out.
"""
from __future__ import annotations

import dataclasses
import hashlib

from subnet.config import Preset
from subnet.wire.signing import canonical_json

CONSENSUS_VERSION = "tessera-consensus-v1"


def consensus_settings(preset: Preset) -> dict:
    compression = dataclasses.asdict(preset.compression)
    compression.pop("ef_decay")  # the sender's error-feedback decay never reaches a reader
    return {"version": CONSENSUS_VERSION, "seed": preset.seed, "model": dataclasses.asdict(preset.model),
            "compression": compression, "outer": dataclasses.asdict(preset.outer),
            "protocol": dataclasses.asdict(preset.protocol)}


def consensus_hash(preset: Preset) -> str:
    return hashlib.sha256(canonical_json(consensus_settings(preset))).hexdigest()


def genesis_anchor(preset: Preset, genesis_model_hash: str) -> str:
    """The `prev_aggregate_sha256` of the first aggregate of a network running this preset."""
    digest = hashlib.sha256(b"tessera-genesis\0")
    digest.update(consensus_hash(preset).encode())
    digest.update(genesis_model_hash.encode())
    return digest.hexdigest()

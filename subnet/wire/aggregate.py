"""The lead validator's aggregate: ``aggregate-{window}.safetensors`` and ``aggregate-{window}.json``.

The aggregate carries the lead's selection in sparse form: one U8 tensor per selected miner holding
that miner's signed gradient object byte for byte, so every part can be re-verified against its
miner's signature. Metadata names the window, the parts, the hash of the model it applies to
(base_model_hash), the hash of the model it produces (result_model_hash) and the sha256 of the
previous aggregate object (prev_aggregate_sha256; `GENESIS_PREV` for the first). The manifest is a
signed JSON summary (sha256, size, the same links), so lineage can be walked without downloading
every aggregate.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
from safetensors.numpy import save as st_save

from subnet.compression.spec import AGGREGATE_MAX_HEADER_BYTES, MAX_AGGREGATE_PARTS, CodecSpec
from subnet.hashing import is_hex64, sha256_hex
from subnet.keys import Keypair, is_valid_address
from subnet.safetensors_header import read_header
from subnet.wire.gradient import (
    Gradient,
    GradientExpectation,
    check_kind,
    check_norm_bound,
    decode_gradient,
    uint_field,
)
from subnet.wire.names import aggregate_key
from subnet.wire.signing import (
    ANY_SIGNER,
    WIRE_VERSION,
    WireError,
    parse_json,
    sign_json,
    sign_safetensors,
    verify_json,
    verify_safetensors,
)

# A neutral lineage root for tests; a network's first aggregate links to
# `subnet.protocol.settings.genesis_anchor(preset, genesis_model_hash)` instead.
GENESIS_PREV = "0" * 64


@dataclass(frozen=True)
class AggregateExpectation:
    """What a follower knows the aggregate of a window must be; every field is required."""
    window: int
    hotkey: str                   # the validator whose aggregate is being read
    base_model_hash: str          # the follower's current model
    prev_aggregate_sha256: str    # the last aggregate the follower applied (GENESIS_PREV if none)
    max_parts: int
    norm_bound: float

    def __post_init__(self):
        check_norm_bound(self.norm_bound)


@dataclass(frozen=True)
class AggregatePart:
    uid: int
    hotkey: str
    gradient_sha256: str


@dataclass(frozen=True)
class Aggregate:
    window: int
    hotkey: str
    base_model_hash: str
    result_model_hash: str
    prev_aggregate_sha256: str
    sha256: str
    parts: list[AggregatePart]
    gradients: list[Gradient] = field(repr=False)


def encode_aggregate(window: int, gradient_objects: list[bytes], keypair: Keypair, *,
                     base_model_hash: str, result_model_hash: str, prev_aggregate_sha256: str) -> bytes:
    """Sign the lead's selection: each selected miner's signed gradient object is carried verbatim
    (a U8 tensor ``part000``, ``part001``, ...), in the order given (the order of application)."""
    for name, value in (("base_model_hash", base_model_hash), ("result_model_hash", result_model_hash),
                        ("prev_aggregate_sha256", prev_aggregate_sha256)):
        if not is_hex64(value):
            raise ValueError(f"{name} must be 64 lowercase hex digits")
    if len(gradient_objects) > MAX_AGGREGATE_PARTS:
        raise ValueError(f"an aggregate holds at most {MAX_AGGREGATE_PARTS} parts (part000..part999)")
    parts, arrays, uids = [], {}, set()
    for i, obj in enumerate(gradient_objects):
        meta = read_header(obj, len(obj), len(obj)).metadata   # the writer's own verified objects
        if int(meta["uid"]) in uids:
            raise ValueError(f"uid {meta['uid']} is listed twice; readers refuse such an aggregate")
        uids.add(int(meta["uid"]))
        parts.append({"uid": int(meta["uid"]), "hotkey": meta["hotkey"], "gradient_sha256": sha256_hex(obj)})
        arrays[f"part{i:03d}"] = np.frombuffer(obj, dtype=np.uint8)
    metadata = {"wire_format": WIRE_VERSION, "kind": "aggregate", "window": str(int(window)),
                "base_model_hash": base_model_hash, "result_model_hash": result_model_hash,
                "prev_aggregate_sha256": prev_aggregate_sha256,
                "parts": json.dumps(parts, sort_keys=True, separators=(",", ":"))}
    return sign_safetensors(st_save(arrays), keypair, metadata)   # zero parts too (tests: the empty aggregate)


def _parse_parts(text: str, max_parts: int) -> list[AggregatePart]:
    if len(text) > AGGREGATE_MAX_HEADER_BYTES:
        raise WireError("bad_metadata", "parts list is too long")
    parts = parse_json(text.encode("utf-8"), "parts")
    if not isinstance(parts, list) or len(parts) > max_parts:
        raise WireError("bad_metadata", f"parts must be a list of at most {max_parts} entries")
    out = []
    for entry in parts:
        if (not isinstance(entry, dict) or set(entry) != {"uid", "hotkey", "gradient_sha256"}
                or type(entry["uid"]) is not int or entry["uid"] < 0
                or not isinstance(entry["hotkey"], str) or not is_valid_address(entry["hotkey"])
                or not is_hex64(entry["gradient_sha256"])):
            raise WireError("bad_metadata", "malformed entry in the parts list")
        out.append(AggregatePart(entry["uid"], entry["hotkey"], entry["gradient_sha256"]))
    if len({p.uid for p in out}) != len(out):
        raise WireError("bad_metadata", "a uid appears twice in the parts list")
    return out


def decode_aggregate(data: bytes, spec: CodecSpec, expect: AggregateExpectation) -> Aggregate:
    """Check an aggregate and every gradient inside it (each against its miner's signature, the
    aggregate's window and base model, and the norm bound), and its link to the previous one."""
    data = bytes(data)
    max_parts = min(expect.max_parts, MAX_AGGREGATE_PARTS)
    signed = verify_safetensors(data, spec.max_aggregate_bytes(max_parts), AGGREGATE_MAX_HEADER_BYTES,
                                expect.hotkey)
    metadata = signed.metadata
    check_kind(metadata, "aggregate")
    got_window = uint_field(metadata, "window")
    if got_window != expect.window:
        raise WireError("wrong_window", f"aggregate is for window {got_window}, expected {expect.window}")
    hashes = {}
    for key in ("base_model_hash", "result_model_hash", "prev_aggregate_sha256"):
        hashes[key] = metadata.get(key, "")
        if not is_hex64(hashes[key]):
            raise WireError("bad_metadata", f"{key} must be 64 lowercase hex digits")
    if hashes["base_model_hash"] != expect.base_model_hash:
        raise WireError("wrong_base_model", f"aggregate {got_window} applies to model "
                                            f"{hashes['base_model_hash'][:16]}..., not {expect.base_model_hash[:16]}...")
    if hashes["prev_aggregate_sha256"] != expect.prev_aggregate_sha256:
        raise WireError("broken_lineage", f"aggregate {got_window} does not link to the previous aggregate")
    parts = _parse_parts(metadata.get("parts", ""), max_parts)
    names = sorted(n for n in signed.header if n != "__metadata__")
    if names != [f"part{i:03d}" for i in range(len(parts))]:
        raise WireError("bad_tensors", f"aggregate tensors {names[:5]}... do not match its {len(parts)} parts")
    gradients = []
    for i, part in enumerate(parts):
        entry = signed.parsed.tensors[f"part{i:03d}"]
        if entry.dtype != "U8" or len(entry.shape) != 1:
            raise WireError("bad_dtype", f"part{i:03d} must be a 1-D U8 tensor")
        obj = bytes(memoryview(data)[signed.data_start + entry.begin:signed.data_start + entry.end])
        if sha256_hex(obj) != part.gradient_sha256:
            raise WireError("part_mismatch", f"part {i} does not hash to its listed gradient_sha256")
        try:
            gradient = decode_gradient(obj, spec, GradientExpectation(
                window=got_window, uid=part.uid, hotkey=part.hotkey,
                base_model_hash=hashes["base_model_hash"], norm_bound=expect.norm_bound))
        except WireError as exc:
            raise WireError(f"part_{exc.reason}", f"part {i} (uid {part.uid}): {exc}") from None
        gradients.append(gradient)
    return Aggregate(window=got_window, hotkey=signed.hotkey, sha256=signed.sha256, parts=parts,
                     gradients=gradients, **hashes)


def aggregate_manifest(aggregate_bytes: bytes, keypair: Keypair) -> bytes:
    """Signed JSON manifest of an aggregate object (read from its own, trusted, header)."""
    meta = read_header(aggregate_bytes, len(aggregate_bytes), len(aggregate_bytes)).metadata
    window = int(meta["window"])
    document = {"wire_format": WIRE_VERSION, "kind": "aggregate_manifest", "window": window,
                "aggregate_key": aggregate_key(window), "aggregate_sha256": sha256_hex(aggregate_bytes),
                "aggregate_size": len(aggregate_bytes), "base_model_hash": meta["base_model_hash"],
                "result_model_hash": meta["result_model_hash"],
                "prev_aggregate_sha256": meta["prev_aggregate_sha256"], "parts": json.loads(meta["parts"])}
    return sign_json(document, keypair)


@dataclass(frozen=True)
class AggregateManifest:
    window: int
    hotkey: str
    aggregate_sha256: str
    aggregate_size: int
    base_model_hash: str
    result_model_hash: str
    prev_aggregate_sha256: str


def decode_manifest(raw: bytes, expected_hotkey: str) -> AggregateManifest:
    document = verify_json(raw, expected_hotkey=expected_hotkey, expected_kind="aggregate_manifest")
    window, size = document.get("window"), document.get("aggregate_size")
    if type(window) is not int or window < 0 or type(size) is not int or size < 1:
        raise WireError("bad_metadata", "manifest window or size is malformed")
    hashes = {k: document.get(k) for k in ("aggregate_sha256", "base_model_hash", "result_model_hash",
                                           "prev_aggregate_sha256")}
    if not all(is_hex64(v) for v in hashes.values()):
        raise WireError("bad_metadata", f"aggregate {window} manifest has malformed hashes")
    return AggregateManifest(window=window, hotkey=document["hotkey"], aggregate_size=size, **hashes)


@dataclass(frozen=True)
class Lineage:
    windows: list[int]
    head_aggregate_sha256: str
    head_model_hash: str


def verify_lineage(manifests: list[bytes], genesis_model_hash: str, genesis_anchor: str, lead_hotkeys: set[str],
                   aggregates: dict[int, bytes] | None = None) -> Lineage:
    """Walk signed aggregate manifests from genesis to the newest: each must name the previous
    aggregate's sha256 and apply to the model the previous one produced (the first: the genesis
    anchor and the genesis model), signed by one of ``lead_hotkeys``. ``aggregates`` (window -> object
    bytes), where given, must hash to what their manifests say."""
    prev_sha, model_hash, last_window, windows = genesis_anchor, genesis_model_hash, -1, []
    for raw in manifests:
        manifest = decode_manifest(raw, ANY_SIGNER)
        window = manifest.window
        if window <= last_window:
            raise WireError("broken_lineage", f"window {window!r} does not follow window {last_window}")
        if manifest.hotkey not in lead_hotkeys:
            raise WireError("wrong_hotkey", f"aggregate {window} signed by {manifest.hotkey}, not a lead")
        if manifest.prev_aggregate_sha256 != prev_sha:
            raise WireError("broken_lineage", f"aggregate {window} does not link to the previous aggregate")
        if manifest.base_model_hash != model_hash:
            raise WireError("broken_lineage", f"aggregate {window} applies to a different model")
        if aggregates is not None and window in aggregates and sha256_hex(aggregates[window]) != manifest.aggregate_sha256:
            raise WireError("part_mismatch", f"aggregate {window} object does not match its manifest")
        prev_sha, model_hash, last_window = manifest.aggregate_sha256, manifest.result_model_hash, window
        windows.append(window)
    return Lineage(windows=windows, head_aggregate_sha256=prev_sha, head_model_hash=model_hash)

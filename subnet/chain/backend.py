"""Which chain a process talks to: the local dev chain (`ChainClient`, the default) or a real subtensor
through the Bittensor SDK (`BittensorChain`). Both have the same methods; `open_chain` picks one.

`--chain` takes either form:
    http://127.0.0.1:9944            the local dev chain (`subnet chain`), any http(s) URL
    finney | test | local            Bittensor networks by the SDK's names (local: a subtensor node
                                     on ws://127.0.0.1:9944)
    ws://host:port | wss://host      a subtensor node's websocket
and a config file section says the same explicitly:
    chain: {kind: local, url: http://127.0.0.1:9944}
    chain: {kind: bittensor, network: test}        # finney | test | local | ws(s)://host:port
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from subnet.errors import InputRejected

if TYPE_CHECKING:
    from subnet.chain.bittensor_chain import BittensorChain
    from subnet.chain.client import ChainClient

Chain = Union["ChainClient", "BittensorChain"]
KINDS = ("local", "bittensor")
BITTENSOR_NETWORKS = ("finney", "test", "local")
_HTTP = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?/?$")
_WS = re.compile(r"^wss?://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?(/[A-Za-z0-9._~/-]*)?$")


class ChainSettingsError(InputRejected):
    def __init__(self, message: str):
        super().__init__("bad_chain", message)


@dataclass(frozen=True)
class ChainSettings:
    kind: str        # "local" | "bittensor"
    endpoint: str    # local: the dev chain's URL; bittensor: a network name or a ws(s):// URL


def parse_chain(text: str) -> ChainSettings:
    """`--chain`'s value: an http(s) URL is the dev chain, a network name or ws(s) URL is Bittensor."""
    text = (text or "").strip()
    if _HTTP.fullmatch(text):
        return ChainSettings("local", text.rstrip("/"))
    if text in BITTENSOR_NETWORKS or _WS.fullmatch(text):
        return ChainSettings("bittensor", text)
    raise ChainSettingsError(f"--chain {text[:80]!r}: give the dev chain's http(s):// URL, a Bittensor network "
                             f"({', '.join(BITTENSOR_NETWORKS)}) or a subtensor node's ws(s):// URL")


def chain_settings(section: object, where: str = "chain") -> ChainSettings:
    """A config file's `chain:` mapping, strictly: {kind: local, url: ...} or {kind: bittensor, network: ...}."""
    if not isinstance(section, dict):
        raise ChainSettingsError(f"{where}: must be a mapping with kind: local | bittensor")
    kind = section.get("kind", "local")
    if kind not in KINDS:
        raise ChainSettingsError(f"{where}.kind: {str(kind)[:40]!r} is not one of {', '.join(KINDS)}")
    key = "url" if kind == "local" else "network"
    unknown = sorted(set(section) - {"kind", key})
    if unknown:
        raise ChainSettingsError(f"{where}: unknown key {unknown[0]!r} for kind {kind} (known: kind, {key})")
    value = section.get(key)
    if not isinstance(value, str):
        raise ChainSettingsError(f"{where}.{key}: missing (kind {kind} needs {key})")
    parsed = parse_chain(value)
    if parsed.kind != kind:
        raise ChainSettingsError(f"{where}.{key}: {value[:80]!r} is a {parsed.kind} chain, not {kind}")
    return parsed


def open_chain(settings: ChainSettings | str, **options) -> Chain:
    """A client of the chain `settings` names (a `--chain` string is parsed first)."""
    if isinstance(settings, str):
        settings = parse_chain(settings)
    if settings.kind == "bittensor":
        from subnet.chain.bittensor_chain import BittensorChain   # the SDK loads only when used
        return BittensorChain(settings.endpoint, **options)
    from subnet.chain.client import ChainClient
    return ChainClient(settings.endpoint, **options)

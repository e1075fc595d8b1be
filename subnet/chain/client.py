"""ChainClient: the one async interface processes use to talk to the chain.

Method names follow the Bittensor SDK where one exists (get_current_block, metagraph, set_weights,
commit, get_all_commitments, add_stake, unstake, burned_register). Connection failures are retried
with backoff; a rejected call raises ChainCallError with the chain's reason and message. Resending a
call after a lost reply is safe: the chain answers a repeated envelope with its first result.

Calls are signed over the chain's genesis hash, cached from `/head`. A dev chain may be reset (a new
genesis) under a long-lived client: a `bad_signature` reply makes the client re-read the genesis
hash once and, if it changed, re-sign with a nonce read from the new chain.

This module loads only aiohttp's client and the pure envelope (no sqlite, amm or server code).
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from subnet.chain.envelope import ChainError, sign_envelope
from subnet.hashing import is_hex64
from subnet.keys import Signer


class ChainCallError(ChainError):
    """The chain refused a request (as the client receives it): `reason` is its error code,
    `detail` its message, `status` the HTTP status."""


class ChainUnavailable(ConnectionError):
    pass


@dataclass(frozen=True)
class Metagraph:
    netuid: int
    block: int
    n: int
    tempo: int
    uids: list[int]
    hotkeys: list[str]
    coldkeys: list[str]
    stake: list[int]
    validator_permit: list[bool]
    incentive: list[float]
    dividends: list[float]
    consensus: list[float]
    validator_trust: list[float]
    emission: list[int]
    last_update: list[int]
    registration_block: list[int]
    active: list[bool]

    def uid_of(self, hotkey: str) -> int | None:
        try:
            return self.hotkeys.index(hotkey)
        except ValueError:
            return None


@dataclass
class ValidatorSet:
    """Who could lead at one block: the inputs of the aggregate rule's stake order."""
    netuid: int
    block: int
    recorded_at: int
    uids: list[int]
    hotkeys: list[str]
    stake: list[int]
    validator_permit: list[bool]
    weight_setters: list[int]


class ChainClient:
    def __init__(self, url: str, timeout: float = 10.0, retries: int = 5, backoff: float = 0.1):
        self.url = url.rstrip("/")
        self.retries, self.backoff = retries, backoff
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._genesis_hash: str | None = None
        self._nonces: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> ChainClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        for attempt in range(self.retries + 1):
            try:
                async with self._http().request(method, self.url + path, json=body) as resp:
                    try:
                        data = await resp.json(content_type=None)
                    except ValueError:   # not JSON: a proxy's page, or not a chain at all
                        raise ChainCallError("bad_reply", f"{method} {path}: the reply (HTTP {resp.status}) is "
                                             "not JSON", resp.status) from None
                    if resp.status >= 400:
                        err = data.get("error") if isinstance(data, dict) else None
                        err = err if isinstance(err, dict) else {}
                        raise ChainCallError(str(err.get("code", "http_error")), str(err.get("message", data))[:500],
                                             resp.status)
                    return data
            except (aiohttp.ClientConnectionError, asyncio.TimeoutError) as exc:
                if attempt == self.retries:
                    raise ChainUnavailable(f"chain at {self.url} unreachable after {attempt + 1} tries: {exc!r}") from None
                await asyncio.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")

    # --- queries ------------------------------------------------------------------------------
    async def head(self) -> dict:
        return await self._request("GET", "/head")

    async def get_current_block(self) -> int:
        return (await self.head())["block"]

    async def get_block_timestamp(self, block: int) -> float:
        return (await self._request("GET", f"/blocks/{block}"))["timestamp"]

    async def metagraph(self, netuid: int) -> Metagraph:
        return Metagraph(**(await self._request("GET", f"/metagraph/{netuid}")))

    async def validators_at(self, netuid: int, block: int) -> ValidatorSet:
        """The validator set as of the start of `block` (ChainCallError `not_kept` when pruned)."""
        return ValidatorSet(**(await self._request("GET", f"/validators/{netuid}/{block}")))

    async def get_all_commitments(self, netuid: int) -> dict[str, str]:
        data = await self._request("GET", f"/commitments/{netuid}")
        return {hotkey: entry["data"] for hotkey, entry in data["commitments"].items()}

    async def get_commitment(self, netuid: int, hotkey: str) -> str | None:
        return (await self.get_all_commitments(netuid)).get(hotkey)

    async def get_weights(self, netuid: int) -> dict[int, tuple[list[int], list[int]]]:
        data = await self._request("GET", f"/weights/{netuid}")
        return {int(uid): (w["uids"], w["weights"]) for uid, w in data["weights"].items()}

    async def weight_setters(self, netuid: int) -> set[int]:
        """Uids whose weights are on chain (the lead rule counts only validators that set weights)."""
        return set(await self.get_weights(netuid))

    async def get_balance(self, address: str) -> int:
        return (await self._request("GET", f"/accounts/{address}"))["balance"]

    async def get_account(self, address: str) -> dict:
        return await self._request("GET", f"/accounts/{address}")

    async def get_stake(self, netuid: int, hotkey: str, coldkey: str) -> int:
        return (await self._request("GET", f"/stake/{netuid}/{hotkey}/{coldkey}"))["alpha"]

    async def get_pool(self, netuid: int) -> dict:
        return await self._request("GET", f"/pool/{netuid}")

    async def get_subnets(self) -> list[int]:
        return (await self._request("GET", "/subnets"))["netuids"]

    async def audit(self) -> dict:
        return await self._request("GET", "/audit")

    async def advance(self, blocks: int = 1) -> dict:
        """Dev mode only: produce `blocks` blocks now."""
        return await self._request("POST", "/dev/advance", {"blocks": blocks})

    # --- signed calls -------------------------------------------------------------------------
    async def _genesis(self, refresh: bool = False) -> str:
        """The chain's genesis hash (cached; `refresh` re-reads it from /head)."""
        if self._genesis_hash is None or refresh:
            value = (await self.head()).get("genesis_hash")
            if not is_hex64(value):
                raise ChainCallError("bad_reply", f"/head genesis_hash {str(value)[:80]!r} is not 64 hex digits", 200)
            self._genesis_hash = value
        return self._genesis_hash

    async def _chain_nonce(self, address: str) -> int:
        return (await self.get_account(address))["nonce"]

    async def _call(self, signer: Signer, call: str, params: dict) -> dict:
        address = signer.address
        lock = self._locks.setdefault(address, asyncio.Lock())
        async with lock:  # one signer's calls leave in nonce order
            nonce_resynced = genesis_reread = False
            while True:
                genesis = await self._genesis()
                nonce = max(time.time_ns(), self._nonces.get(address, 0) + 1)
                self._nonces[address] = nonce
                try:
                    return await self._request("POST", "/call", sign_envelope(signer, call, params, nonce, genesis))
                except ChainCallError as exc:
                    if exc.reason == "stale_nonce" and not nonce_resynced:
                        # Another process (or a clock ahead of ours) used higher nonces: continue after them.
                        nonce_resynced = True
                        self._nonces[address] = await self._chain_nonce(address)
                    elif exc.reason == "bad_signature" and not genesis_reread:
                        # The chain may have been reset under us: a new genesis voids our signatures.
                        genesis_reread = True
                        if await self._genesis(refresh=True) == genesis:
                            raise
                        self._nonces.clear()  # nonces of the old chain mean nothing on the new one
                        self._nonces[address] = await self._chain_nonce(address)
                    else:
                        raise

    async def transfer(self, coldkey: Signer, dest: str, amount: int) -> dict:
        return await self._call(coldkey, "transfer", {"dest": dest, "amount": amount})

    async def burned_register(self, coldkey: Signer, netuid: int, hotkey: str) -> dict:
        return await self._call(coldkey, "burned_register", {"netuid": netuid, "hotkey": hotkey})

    async def add_stake(self, coldkey: Signer, netuid: int, hotkey: str, amount: int,
                        limit_price: float | None = None, allow_partial: bool = True) -> dict:
        params = {"netuid": netuid, "hotkey": hotkey, "amount": amount}
        if limit_price is not None:
            params.update(limit_price=limit_price, allow_partial=allow_partial)
        return await self._call(coldkey, "add_stake", params)

    async def unstake(self, coldkey: Signer, netuid: int, hotkey: str, amount: int,
                      limit_price: float | None = None, allow_partial: bool = True) -> dict:
        params = {"netuid": netuid, "hotkey": hotkey, "amount": amount}
        if limit_price is not None:
            params.update(limit_price=limit_price, allow_partial=allow_partial)
        return await self._call(coldkey, "remove_stake", params)

    async def set_weights(self, hotkey: Signer, netuid: int, uids: list[int], weights: list[int]) -> dict:
        return await self._call(hotkey, "set_weights", {"netuid": netuid, "uids": list(uids),
                                                        "weights": list(weights)})

    async def commit(self, hotkey: Signer, netuid: int, data: str) -> dict:
        return await self._call(hotkey, "commit", {"netuid": netuid, "data": data})

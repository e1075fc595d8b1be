"""BittensorChain (subnet/chain/bittensor_chain.py) with the SDK replaced only at its network boundary.

`bittensor.Client(substrate=...)` takes any implementation of the SDK's `Substrate` contract: here one
that answers from a table of decoded chain values (what the RPC backend returns) and records every
request. Everything above it is the real SDK: its reads, intents, weight conforming, commit-reveal
and shielded submission. A request the table does not hold fails the test and names itself, so an
SDK that starts reading something new is noticed. Each call the miner and validator make is covered,
and each chain error they react to maps to the local chain's reason.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timezone

import bittensor as bt
import pytest
from bittensor.result import ChainError as SdkChainError
from bittensor.result import ExtrinsicResult

from subnet.chain.backend import ChainSettingsError, chain_settings, open_chain, parse_chain
from subnet.chain.bittensor_chain import BittensorChain, commitment_info
from subnet.chain.client import ChainCallError, ChainClient, ChainUnavailable, Metagraph, ValidatorSet
from subnet.keys import SR25519, CoreKeypair, Keypair
from subnet.storage.commitment import BucketCommitment, format_commitment

NETUID = 7
HEAD = 1200
OWNER, VALIDATOR, MINER = CoreKeypair.generate(SR25519), CoreKeypair.generate(SR25519), Keypair.generate()
OWNER_COLD, VALIDATOR_COLD, MINER_COLD = (CoreKeypair.generate(SR25519) for _ in range(3))
HOTKEYS = [OWNER.address, VALIDATOR.address, MINER.address]
BUCKET = format_commitment(BucketCommitment("https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com",
                                            "tessera-miner-7", "A" * 32, "s" * 64))
STAMP_MS = 1_764_000_000_000


def block_hash(block: int) -> str:
    return "0x%064x" % block


def graph(block: int) -> dict:
    """SubnetInfoRuntimeApi.get_metagraph's decoded record for three neurons (PerU16 scores)."""
    return {
        "netuid": NETUID, "name": list(b"tessera"), "symbol": list(b"t"), "block": block, "tempo": 360,
        "last_step": block - 10, "blocks_since_last_step": 10, "owner_hotkey": OWNER.address,
        "owner_coldkey": OWNER_COLD.address, "network_registered_at": 5, "num_uids": 3, "max_uids": 256,
        "tao_in": 5_000 * 10**9, "alpha_in": 10_000 * 10**9, "moving_price": {"bits": 2**31},
        "hotkeys": HOTKEYS, "coldkeys": [OWNER_COLD.address, VALIDATOR_COLD.address, MINER_COLD.address],
        "active": [True, True, True], "validator_permit": [False, True, False], "last_update": [5, block - 3, 900],
        "block_at_registration": [5, 40, 800], "rank": [0, 0, 65535], "trust": [0, 0, 65535],
        "consensus": [0, 0, 65535], "incentives": [0, 0, 65535], "dividends": [0, 65535, 0],
        "pruning_score": [0, 0, 0], "validator_trust": [0, 32768, 0], "emission": [0, 4 * 10**9, 2 * 10**9],
        "alpha_stake": [10**9, 900 * 10**9, 3 * 10**9], "tao_stake": [0, 0, 0],
        "total_stake": [10**9, 1000 * 10**9, 3 * 10**9], "axons": [None, None, None], "identities": [None] * 3,
    }


@dataclass
class RecordedSubstrate:
    """The SDK's `Substrate` contract answered from decoded values; `submitted` keeps each write."""

    head: int = HEAD
    commit_reveal: bool = False
    submit_error: SdkChainError | str | None = None    # what the writes fail with ("dropped": no error)
    fail_connection: int = 0                     # how many reads fail with a lost connection first
    pruned_before: int = 0                       # blocks older than this have no state any more
    requests: list = field(default_factory=list)
    submitted: list = field(default_factory=list)
    token_symbols: dict = field(default_factory=dict)

    def balance(self, rao: int, netuid: int = 0) -> bt.Balance:
        return bt.Balance.from_rao(rao, netuid)

    async def connect(self) -> None:
        self.requests.append(("connect",))

    async def close(self) -> None:
        self.requests.append(("close",))

    def _lost(self) -> None:
        if self.fail_connection:
            self.fail_connection -= 1
            raise bt.RpcConnectionError("websocket closed (code 1006)")

    async def block_number(self) -> int:
        self._lost()
        return self.head

    async def block_hash(self, block: int | None = None) -> str:
        block = self.head if block is None else block
        if block < self.pruned_before:
            raise SdkChainError(f"State already discarded for {block_hash(block)}")
        return block_hash(block)

    async def block_time(self) -> float:
        return 12.0

    def _block(self, hash_: str | None) -> int:
        return self.head if hash_ is None else int(hash_, 16)

    STORAGE = {
        ("SubtensorModule", "SubnetOwnerHotkey"): lambda self, p: OWNER.address,
        ("SubtensorModule", "SubnetTAO"): lambda self, p: 5_000 * 10**9,
        ("SubtensorModule", "SubnetAlphaIn"): lambda self, p: 10_000 * 10**9,
        ("SubtensorModule", "Uids"): lambda self, p: HOTKEYS.index(p[1]) if p[1] in HOTKEYS else None,
        ("SubtensorModule", "CommitRevealWeightsEnabled"): lambda self, p: self.commit_reveal,
        ("SubtensorModule", "WeightsSetRateLimit"): lambda self, p: 100,
        ("SubtensorModule", "LastUpdate"): lambda self, p: [5, HEAD - 500, 900],
        ("SubtensorModule", "MinAllowedWeights"): lambda self, p: 1,
        ("SubtensorModule", "MaxWeightsLimit"): lambda self, p: 65535,
        ("SubtensorModule", "SubnetEpochConsensus"): lambda self, p: None,
        ("SubtensorModule", "Burn"): lambda self, p: 10**9,
        ("SubtensorModule", "CollateralLockShare"): lambda self, p: 0,
        ("SubtensorModule", "RevealPeriodEpochs"): lambda self, p: 1,
        ("SubtensorModule", "Tempo"): lambda self, p: 360,
        ("SubtensorModule", "LastEpochBlock"): lambda self, p: HEAD - 100,
        ("SubtensorModule", "PendingEpochAt"): lambda self, p: HEAD + 260,
        ("SubtensorModule", "SubnetEpochIndex"): lambda self, p: 3,
        ("SubtensorModule", "BlocksSinceLastStep"): lambda self, p: 100,
        ("SubtensorModule", "SubtokenEnabled"): lambda self, p: True,
        ("System", "Account"): lambda self, p: {"nonce": 3, "data": {"free": 42 * 10**9, "reserved": 0, "frozen": 0}},
        ("Timestamp", "Now"): lambda self, p: STAMP_MS,
        ("Commitments", "CommitmentOf"): lambda self, p: (
            {"block": 950, "deposit": 0, "info": commitment_info(BUCKET)} if p[1] == MINER.address else None),
    }
    MAPS = {
        ("SubtensorModule", "TokenSymbol"): lambda self, p: [],
        ("SubtensorModule", "Weights"): lambda self, p: [(1, [(2, 65535)]), (0, [])],
        ("SubtensorModule", "TimelockedWeightCommits"): lambda self, p: (
            [(3, [(OWNER.address, HEAD - 2, "0xabcd", 99)])] if self.commit_reveal else []),
        ("SubtensorModule", "Uids"): lambda self, p: [(h, u) for u, h in enumerate(HOTKEYS)],
        ("Commitments", "CommitmentOf"): lambda self, p: [
            (MINER.address, {"block": 950, "deposit": 0, "info": commitment_info(BUCKET)}),
            (VALIDATOR.address, {"block": 960, "deposit": 0, "info": commitment_info("not a bucket")})],
        ("Commitments", "RevealedCommitments"): lambda self, p: [],
    }

    def _answer(self, table: dict, kind: str, module: str, name: str, params, hash_: str | None):
        self.requests.append((kind, module, name, tuple(params or ()), self._block(hash_)))
        self._lost()
        if (module, name) not in table:
            raise AssertionError(f"the SDK asked for {kind} {module}.{name}{tuple(params or ())}, not recorded here")
        return table[(module, name)](self, list(params or []))

    async def query(self, module, storage_function, params=None, block_hash=None):
        return self._answer(self.STORAGE, "query", module, storage_function, params, block_hash)

    async def query_map(self, module, storage_function, params=None, block_hash=None):
        return self._answer(self.MAPS, "query_map", module, storage_function, params, block_hash)

    async def runtime_call(self, api, method, params, block_hash=None):
        self.requests.append(("runtime", api, method, tuple(params), self._block(block_hash)))
        self._lost()
        if (api, method) == ("SubnetInfoRuntimeApi", "get_metagraph"):
            return graph(self._block(block_hash)) if params == [NETUID] else None
        if (api, method) == ("StakeInfoRuntimeApi", "get_stake_info_for_hotkey_coldkey_netuid"):
            return {"stake": 900 * 10**9} if params[0] == VALIDATOR.address else None
        if (api, method) == ("SwapRuntimeApi", "current_alpha_price"):
            return 5 * 10**8   # rao per alpha
        raise AssertionError(f"the SDK called runtime {api}.{method}{tuple(params)}, not recorded here")

    async def compose(self, call):
        return call

    async def estimate_fee(self, call, keypair) -> bt.Balance:
        return bt.Balance.from_rao(125_000)

    async def account_next_index(self, address: str) -> int:
        return 7

    async def mev_next_key(self) -> bytes:
        return bytes(1152) + bytes(range(32))   # a well-formed ML-KEM-768 public key (all-zero vector)

    async def sign_extrinsic(self, call, keypair, *, nonce: int, period: int):
        self.submitted.append(("inner", call, keypair.ss58_address, nonce))
        return b"signed:" + repr(call).encode(), "0x" + "cd" * 32

    async def find_extrinsic(self, extrinsic_hash: str, block_hash: str) -> ExtrinsicResult:
        """The shielded inner call's own outcome in the block that carried it."""
        self.submitted.append(("found", extrinsic_hash, block_hash, None))
        return ExtrinsicResult(success=True, message="inner call dispatched", block_hash=block_hash)

    async def submit(self, call, keypair, *, nonce=None, period=None, wait_for_inclusion=True,
                     wait_for_finalization=True) -> ExtrinsicResult:
        self.submitted.append(("submit", call, keypair.ss58_address, nonce))
        if self.submit_error == "dropped":
            return ExtrinsicResult(success=False, message="Dropped from the pool")
        if self.submit_error is not None:
            return ExtrinsicResult(success=False, message=str(self.submit_error), error=self.submit_error)
        return ExtrinsicResult(success=True, message="in block", block_hash=block_hash(self.head + 1),
                               extrinsic_id=f"{self.head + 1}-2")


@pytest.fixture(autouse=True)
def _sdk_cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("BTCLI_TOKEN_SYMBOLS_CACHE", str(tmp_path / "token-symbols.json"))


def chain_with(substrate: RecordedSubstrate, **options) -> BittensorChain:
    options.setdefault("head_cache_s", 0.0)
    return BittensorChain("test", client=bt.Client("test", substrate=substrate), backoff=0.0, **options)


def run(coro):
    return asyncio.run(coro)


def calls_of(substrate: RecordedSubstrate) -> list:
    return [(c.module, c.function, c.params) for kind, c, *_ in substrate.submitted if kind == "submit"]


# --- reads ----------------------------------------------------------------------------------------

def test_block_and_block_timestamps_come_from_the_chain():
    sub = RecordedSubstrate()
    chain = chain_with(sub)
    assert run(chain.get_current_block()) == HEAD
    assert run(chain.get_block_timestamp(1150)) == STAMP_MS / 1000
    assert ("query", "Timestamp", "Now", (), 1150) in sub.requests   # read at that block, not the head


def test_the_head_is_polled_at_most_once_per_cache_period():
    sub = RecordedSubstrate()
    chain = chain_with(sub, head_cache_s=60.0)

    async def poll() -> list[int]:
        seen = [await chain.get_current_block()]
        sub.head += 1                       # a new block arrives
        seen.append(await chain.get_current_block())
        chain.head_cache_s = 0.0            # the cache period has passed
        seen.append(await chain.get_current_block())
        return seen
    assert run(poll()) == [HEAD, HEAD, HEAD + 1]


def test_metagraph_is_the_processes_type_with_total_stake_and_permits():
    sub = RecordedSubstrate()
    mg = run(chain_with(sub).metagraph(NETUID))
    assert isinstance(mg, Metagraph) and (mg.netuid, mg.block, mg.n, mg.tempo) == (NETUID, HEAD, 3, 360)
    assert mg.uids == [0, 1, 2] and mg.hotkeys == HOTKEYS and mg.uid_of(MINER.address) == 2
    assert mg.stake == [10**9, 1000 * 10**9, 3 * 10**9]        # total stake, rao
    assert mg.validator_permit == [False, True, False]
    assert mg.incentive == [0.0, 0.0, 1.0] and mg.dividends == [0.0, 1.0, 0.0]
    assert mg.validator_trust[1] == pytest.approx(0.5, abs=1e-4)
    assert mg.emission == [0, 4 * 10**9, 2 * 10**9] and mg.last_update[1] == HEAD - 3
    assert mg.registration_block == [5, 40, 800] and all(mg.active)
    with pytest.raises(ChainCallError) as err:
        run(chain_with(RecordedSubstrate()).metagraph(99))
    assert err.value.reason == "unknown_subnet"


def test_weight_setters_include_committed_but_unrevealed_weights():
    plain = RecordedSubstrate()
    assert run(chain_with(plain).weight_setters(NETUID)) == {1}     # uid 0's row is empty
    assert run(chain_with(plain).get_weights(NETUID)) == {1: ([2], [65535])}
    hidden = RecordedSubstrate(commit_reveal=True)
    assert run(chain_with(hidden).weight_setters(NETUID)) == {0, 1}  # the owner's commit waits for its round


def test_validators_at_reads_every_input_of_the_lead_rule_at_that_block():
    sub = RecordedSubstrate()
    at = run(chain_with(sub).validators_at(NETUID, 1100))
    assert isinstance(at, ValidatorSet) and at.block == 1100
    assert (at.uids, at.hotkeys, at.stake) == ([0, 1, 2], HOTKEYS, [10**9, 1000 * 10**9, 3 * 10**9])
    assert at.validator_permit == [False, True, False] and at.weight_setters == [1]
    pinned = [r for r in sub.requests if r[0] in ("query", "query_map", "runtime") and r[2] != "TokenSymbol"]
    assert pinned and all(r[-1] == 1100 for r in pinned)
    pruned = RecordedSubstrate(pruned_before=1150)
    with pytest.raises(ChainCallError) as err:
        run(chain_with(pruned).validators_at(NETUID, 1100))
    assert err.value.reason == "not_kept"    # NetworkView then falls back to today's order


def test_commitments_are_the_plain_text_committed_in_raw_fields():
    sub = RecordedSubstrate()
    chain = chain_with(sub)
    assert len(BUCKET) > 128   # an R2 commitment does not fit one Raw field
    assert run(chain.get_all_commitments(NETUID)) == {MINER.address: BUCKET, VALIDATOR.address: "not a bucket"}
    assert run(chain.get_commitment(NETUID, MINER.address)) == BUCKET
    assert run(chain.get_commitment(NETUID, OWNER.address)) is None


def test_pool_balance_and_stake_in_rao():
    sub = RecordedSubstrate()
    chain = chain_with(sub)
    pool = run(chain.get_pool(NETUID))
    assert pool["owner_hotkey"] == OWNER.address and (pool["tao_in"], pool["alpha_in"]) == (5_000 * 10**9, 10_000 * 10**9)
    assert run(chain.get_balance(MINER_COLD.address)) == 42 * 10**9
    assert run(chain.get_stake(NETUID, VALIDATOR.address, VALIDATOR_COLD.address)) == 900 * 10**9
    assert run(chain.get_stake(NETUID, MINER.address, MINER_COLD.address)) == 0


# --- writes ---------------------------------------------------------------------------------------

def test_registration_is_a_shielded_burned_register_of_the_hotkey_signed_by_the_coldkey():
    sub = RecordedSubstrate()
    receipt = run(chain_with(sub).burned_register(MINER_COLD, NETUID, MINER.address))
    assert receipt["ok"] and receipt["block_hash"] == block_hash(HEAD + 1)   # the inner call's own block
    inner = [c for kind, c, *_ in sub.submitted if kind == "inner"]
    assert [(c.module, c.function, c.params) for c in inner] == [
        ("SubtensorModule", "burned_register", {"netuid": NETUID, "hotkey": MINER.address})]
    assert calls_of(sub)[0][:2] == ("MevShield", "submit_encrypted")
    assert {address for kind, _, address, _ in sub.submitted if kind != "found"} == {MINER_COLD.address}


def test_stake_is_added_in_exact_rao_from_the_coldkey():
    sub = RecordedSubstrate()
    run(chain_with(sub).add_stake(VALIDATOR_COLD, NETUID, VALIDATOR.address, 123_456_789_012))
    (module, function, params), = calls_of(sub)
    assert module == "SubtensorModule" and function.startswith("add_stake")
    assert params["hotkey"] == VALIDATOR.address and params["netuid"] == NETUID
    assert params["amount_staked"] == 123_456_789_012


def test_a_limit_price_is_the_chains_limit_call_in_rao_per_alpha():
    """The local chain's limit_price (TAO per alpha) reaches subtensor's *_limit calls, not dropped."""
    sub = RecordedSubstrate()
    chain = chain_with(sub)
    run(chain.add_stake(VALIDATOR_COLD, NETUID, VALIDATOR.address, 10**9, limit_price=0.55, allow_partial=True))
    run(chain.unstake(VALIDATOR_COLD, NETUID, VALIDATOR.address, 2 * 10**9, limit_price=0.45, allow_partial=False))
    (_, stake_call, stake), (_, unstake_call, unstake) = calls_of(sub)
    assert stake_call == "add_stake_limit" and (stake["amount_staked"], stake["limit_price"], stake["allow_partial"]) == \
        (10**9, 550_000_000, True)
    assert unstake_call == "remove_stake_limit"
    assert (unstake["amount_unstaked"], unstake["limit_price"], unstake["allow_partial"]) == (2 * 10**9, 450_000_000, False)
    for bad in (0.0, -1.0, float("inf"), True):
        with pytest.raises(ChainCallError) as err:
            run(chain.add_stake(VALIDATOR_COLD, NETUID, VALIDATOR.address, 10**9, limit_price=bad))
        assert err.value.reason == "bad_params"
    assert len(calls_of(sub)) == 2   # nothing signed for a bad limit


def test_weights_are_conformed_to_u16_and_signed_by_the_hotkey():
    sub = RecordedSubstrate()
    run(chain_with(sub).set_weights(VALIDATOR, NETUID, [2, 0], [40_000, 20_000]))
    (module, function, params), = calls_of(sub)
    assert (module, function) == ("SubtensorModule", "set_mechanism_weights")
    assert params["dests"] == [0, 2] or params["dests"] == [2, 0]
    weights = dict(zip(params["dests"], params["weights"]))
    assert weights[2] == 65535 and abs(weights[0] - 32767) <= 1   # max-upscaled, proportions kept
    assert sub.submitted[0][2] == VALIDATOR.address


def test_weights_on_a_commit_reveal_subnet_are_a_timelocked_commit():
    sub = RecordedSubstrate(commit_reveal=True)
    run(chain_with(sub).set_weights(VALIDATOR, NETUID, [2], [65535]))
    (module, function, params), = calls_of(sub)
    assert (module, function) == ("SubtensorModule", "commit_timelocked_mechanism_weights")
    assert params["netuid"] == NETUID and params["commit"] and params["reveal_round"] > 0   # sealed until its drand round


def test_the_bucket_commitment_is_split_into_raw_fields_the_reader_joins():
    sub = RecordedSubstrate()
    run(chain_with(sub).commit(MINER, NETUID, BUCKET))
    (module, function, params), = calls_of(sub)
    assert (module, function, params["netuid"]) == ("Commitments", "set_commitment", NETUID)
    fields = params["info"]["fields"]
    assert [next(iter(f)) for f in fields] == ["Raw128", f"Raw{len(BUCKET) - 128}"]
    assert b"".join(bytes.fromhex(next(iter(f.values()))[2:]) for f in fields).decode() == BUCKET
    assert sub.submitted[0][2] == MINER.address   # hotkey-signed


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,reason", [
    ("SettingWeightsTooFast", "rate_limited"),
    ("TooManyRegistrationsThisBlock", "rate_limited"),
    ("NotEnoughBalanceToStake", "insufficient_balance"),
    ("HotKeyNotRegisteredInSubNet", "not_registered"),
    ("HotKeyAlreadyRegisteredInSubNet", "already_registered"),
    ("NeuronNoValidatorPermit", "no_validator_permit"),
    ("NotEnoughStakeToSetWeights", "insufficient_stake"),
    ("SubnetNotExists", "unknown_subnet"),
    ("UidVecContainInvalidOne", "unknown_uid"),
    ("WeightVecLengthIsLow", "bad_weights"),
    ("SpaceLimitExceeded", "commitment_too_large"),
    ("InsufficientLiquidity", "pool_refused"),
    ("NonAssociatedColdKey", "hotkey_owned"),
])
def test_each_chain_refusal_maps_to_the_local_chains_reason(name, reason):
    sub = RecordedSubstrate(submit_error=SdkChainError(f"{name} (module error)", name=name))
    chain = chain_with(sub)
    for attempt in (chain.commit(MINER, NETUID, BUCKET), chain.set_weights(VALIDATOR, NETUID, [2], [1])):
        with pytest.raises(ChainCallError) as err:
            run(attempt)
        assert err.value.reason == reason and name in err.value.detail
    assert err.value.status == {"rate_limited": 429, "no_validator_permit": 403, "unknown_subnet": 404}.get(reason, 400)


def test_a_write_that_failed_without_a_chain_error_says_what_the_node_said():
    with pytest.raises(ChainCallError, match="Dropped from the pool") as err:
        run(chain_with(RecordedSubstrate(submit_error="dropped")).commit(MINER, NETUID, BUCKET))
    assert err.value.reason == "unknown"


def test_the_sdks_own_preflight_refusal_is_reported_like_the_chains():
    sub = RecordedSubstrate()
    with pytest.raises(ChainCallError) as err:   # the SDK checks registration before signing
        run(chain_with(sub).set_weights(Keypair.generate(), NETUID, [2], [1]))
    assert err.value.reason == "not_registered" and not sub.submitted


def test_a_lost_connection_is_retried_then_reported_as_unavailable():
    flaky = RecordedSubstrate(fail_connection=2)
    assert run(chain_with(flaky, retries=3).get_current_block()) == HEAD
    assert flaky.requests.count(("connect",)) == 3     # reconnected after each loss
    down = RecordedSubstrate(fail_connection=100)
    with pytest.raises(ChainUnavailable, match="bittensor chain test unreachable after 3 tries"):
        run(chain_with(down, retries=2).get_current_block())


def test_an_answer_the_sdk_cannot_decode_is_a_bad_reply_not_a_crash():
    class Garbled(RecordedSubstrate):
        async def runtime_call(self, api, method, params, block_hash=None):
            return {"hotkeys": HOTKEYS, "block": "not a number"}
    with pytest.raises(ChainCallError) as err:
        run(chain_with(Garbled()).metagraph(NETUID))
    assert err.value.reason == "bad_reply"


def test_bad_weight_vectors_are_refused_before_anything_is_signed():
    sub = RecordedSubstrate()
    with pytest.raises(ChainCallError) as err:
        run(chain_with(sub).set_weights(VALIDATOR, NETUID, [1, 2], [5]))
    assert err.value.reason == "bad_weights" and not sub.submitted


# --- choosing the backend -------------------------------------------------------------------------

@pytest.mark.parametrize("text,kind,endpoint", [
    ("http://127.0.0.1:9944", "local", "http://127.0.0.1:9944"),
    ("https://chain.example.org/", "local", "https://chain.example.org"),
    ("finney", "bittensor", "finney"), ("test", "bittensor", "test"), ("local", "bittensor", "local"),
    ("ws://127.0.0.1:9945", "bittensor", "ws://127.0.0.1:9945"),
    ("wss://entrypoint-finney.opentensor.ai:443", "bittensor", "wss://entrypoint-finney.opentensor.ai:443"),
])
def test_chain_spec_picks_the_backend(text, kind, endpoint):
    settings = parse_chain(text)
    assert (settings.kind, settings.endpoint) == (kind, endpoint)
    client = open_chain(settings)
    assert isinstance(client, BittensorChain if kind == "bittensor" else ChainClient)


@pytest.mark.parametrize("section,message", [
    ({"kind": "bittensor", "network": "test"}, None),
    ({"kind": "local", "url": "http://127.0.0.1:9944"}, None),
    ({"url": "http://127.0.0.1:9944"}, None),
    ({"kind": "eth", "network": "test"}, "chain.kind: 'eth' is not one of local, bittensor"),
    ({"kind": "bittensor", "url": "http://x:1"}, "chain: unknown key 'url' for kind bittensor"),
    ({"kind": "bittensor"}, "chain.network: missing"),
    ({"kind": "local", "url": "finney"}, "chain.url: 'finney' is a bittensor chain, not local"),
    (["test"], "chain: must be a mapping"),
    ({"kind": "bittensor", "network": "mainnet"}, "--chain 'mainnet': give the dev chain's http"),
])
def test_chain_config_section_is_strict(section, message):
    if message is None:
        assert chain_settings(section).kind == section.get("kind", "local")
        return
    with pytest.raises(ChainSettingsError, match=message) as err:
        chain_settings(section)
    assert err.value.reason == "bad_chain"

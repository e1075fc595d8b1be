"""The dev chain's state machine: genesis, calls, one block's transition, queries and the audit.

No network here (server.py serves it). Each call and each block is one sqlite transaction, so
killing the process loses nothing that was acknowledged, and a restart resumes at the same block.

Block b+1 (`produce_block`): amm's coinbase for every subnet (emission, injection, pending buckets,
price and flow EMAs), then, for each subnet whose tempo ends, the Yuma epoch and the alpha payout.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from amm.coinbase import ChainState, Params, Pending, SubnetState, epoch_due, run_block
from amm.pool import Pool
from subnet.chain.calls import HANDLERS, CallContext, parse_envelope, require_subnet
from subnet.chain.envelope import ChainError, check_signature
from subnet.chain.epoch import EpochInputs, run_epoch, split_payout
from subnet.chain.genesis import ChainParams
from subnet.chain.store import NeuronRow, Store, SubnetRow

STATE_VERSION = "tessera-devchain-v1"
# Validator sets by block (the aggregate rule reads the stake order at a window's first block):
# kept this long, like a pruning node's state (a subtensor lite node keeps 256 blocks).
VALIDATOR_SET_HISTORY = 4096
VALIDATOR_SET_PRUNE_EVERY = 256


def genesis_hash(params: ChainParams) -> str:
    doc = json.dumps({"version": STATE_VERSION, "params": asdict(params)}, sort_keys=True, default=str)
    return hashlib.sha256(doc.encode()).hexdigest()


def _replayed(stored: dict) -> dict:
    """The first answer to an envelope sent again: its result, or its error raised again."""
    if "error" in stored:
        raise ChainError(stored["error"]["code"], stored["error"]["message"], stored.get("status", 400))
    return {**stored, "duplicate": True}


class ChainNode:
    def __init__(self, db_path: Path | str, params: ChainParams | None = None, now: float | None = None):
        self.store = Store(db_path)
        stored = self.store.get_meta("params")
        if stored is None:
            if params is None:
                params = ChainParams()
            self._genesis(params, time.time() if now is None else now)
        self.params = self._load_params()
        self.genesis_hash = self.store.get_meta("genesis_hash")
        self.amm_params = Params(model=self.params.emission_model, tao_weight=self.params.tao_weight)
        self._calls_block, self._calls_in_block = -1, {}   # signed calls per signer in the current block
        # The last block's coinbase per subnet, for display (GET /pool): not state, so not stored;
        # a restarted chain shows it again from its next block.
        self._last_emission: dict[int, dict] = {}

    # --- genesis ------------------------------------------------------------------------------
    def _genesis(self, params: ChainParams, now: float) -> None:
        s = self.store
        with s.transaction():
            s.set_meta("params", json.dumps(asdict(params)))
            s.set_meta("genesis_hash", genesis_hash(params))
            s.set_meta("block", 0)
            s.add_block(0, now)
            issuance = 0
            for address, amount in params.balances.items():
                s.add_balance(address, amount)
                issuance += amount
            for g in params.subnets:
                # Pool reserves are protocol liquidity at genesis: counted in issuance, owned by no one.
                s.save_subnet(SubnetRow(
                    netuid=g.netuid, owner=g.owner, owner_hotkey=g.owner_hotkey, pool_tao=g.pool_tao,
                    pool_alpha=g.pool_alpha, alpha_issuance=g.pool_alpha, ema_price=0.0, flow_ema=0.0,
                    flow_this_block=0, blocks_since_start=0, tempo=g.tempo, emission_enabled=g.emission_enabled,
                    pending_owner=0, pending_miner=0, pending_validator=0, protocol_alpha=0, alpha_recycled=0,
                    burn=g.burn, max_uids=g.max_uids, max_validators=g.max_validators,
                    immunity_period=g.immunity_period, activity_cutoff=g.activity_cutoff, kappa=g.kappa,
                    bond_alpha=g.bond_alpha, bonds_penalty=g.bonds_penalty, yuma3=g.yuma3, last_epoch_block=0))
                issuance += g.pool_tao
                s.set_hotkey_owner(g.owner_hotkey, g.owner)
                s.save_neuron(NeuronRow(netuid=g.netuid, uid=0, hotkey=g.owner_hotkey, coldkey=g.owner,
                                        registered_block=0, last_update=0))
            root = 0
            for hotkey, amount in params.root_stake.items():
                owner = s.hotkey_owner(hotkey) or hotkey
                s.add_stake(0, hotkey, owner, amount)
                root += amount
            s.set_meta("root_tao", root)
            s.set_meta("total_issuance", issuance + root)
            self._record_validator_sets(0)

    def _load_params(self) -> ChainParams:
        from subnet.chain.genesis import SubnetGenesis

        raw = json.loads(self.store.get_meta("params"))
        raw["subnets"] = tuple(SubnetGenesis(**sub) for sub in raw["subnets"])
        return ChainParams(**raw)

    # --- calls --------------------------------------------------------------------------------
    @property
    def block(self) -> int:
        return self.store.get_int("block")

    def apply_call(self, body: object) -> dict:
        """Check and apply one signed call; returns its result or raises ChainError (nothing changed)."""
        env = parse_envelope(body)
        check_signature(env, self.genesis_hash)
        s = self.store
        failure: ChainError | None = None
        with s.transaction():
            _, last_nonce, last_signature, last_result = s.account(env.signer)
            if env.nonce <= last_nonce:
                if env.nonce == last_nonce and env.signature == last_signature and last_result is not None:
                    return _replayed(json.loads(last_result))
                raise ChainError("stale_nonce", f"nonce {env.nonce} is not above the last used {last_nonce}")
            self._admit(env.signer)
            ctx = CallContext(store=s, params=self.params, block=self.block, signer=env.signer)
            try:
                with s.savepoint():
                    result = {"call": env.call, "block": ctx.block, **HANDLERS[env.call](ctx, env.params)}
            except ChainError as exc:
                # The call's own writes are undone, but its nonce is spent (as on Substrate), so the
                # signed envelope cannot be replayed later once it would succeed.
                failure, result = exc, {**exc.to_json(), "status": exc.status}
            s.record_call(env.signer, env.nonce, env.signature, json.dumps(result))
        if failure is not None:
            raise failure
        return result

    def _admit(self, signer: str) -> None:
        """Count a signer's call in this block, or refuse it past `max_calls_per_block` (before its
        nonce is spent: the same envelope is accepted in a later block). Admission, not state: the
        counts live in memory and start afresh with each block and each restart."""
        block = self.block
        if self._calls_block != block:
            self._calls_block, self._calls_in_block = block, {}
        made = self._calls_in_block.get(signer, 0)
        limit = self.params.max_calls_per_block
        if made >= limit:
            raise ChainError("rate_limited", f"{signer} already made {limit} calls in block {block} "
                                             "(chain.max_calls_per_block); send it again in a later block", 429)
        self._calls_in_block[signer] = made + 1

    # --- blocks -------------------------------------------------------------------------------
    def _amm_state(self, subnets: list[SubnetRow]) -> ChainState:
        return ChainState(
            block=self.block + 1, total_issuance=self.store.get_int("total_issuance"),
            root=Pool.root(self.store.get_int("root_tao")),
            subnets=[SubnetState(
                netuid=r.netuid, pool=Pool(tao=r.pool_tao, alpha=r.pool_alpha), alpha_issuance=r.alpha_issuance,
                ema_price=r.ema_price, flow_ema=r.flow_ema, flow_this_block=r.flow_this_block,
                blocks_since_start=r.blocks_since_start, tempo=r.tempo, emission_enabled=r.emission_enabled,
                pending=Pending(r.pending_owner, r.pending_miner, r.pending_validator),
                protocol_alpha=r.protocol_alpha, alpha_recycled=r.alpha_recycled) for r in subnets])

    def produce_block(self, now: float | None = None) -> dict:
        """Make the next block in one transaction; returns {block, timestamp, epochs}."""
        s = self.store
        with s.transaction():
            rows = {r.netuid: r for r in s.subnets()}
            result = run_block(self._amm_state(list(rows.values())), self.amm_params)
            for sub in result.state.subnets:
                row = rows[sub.netuid]
                row.pool_tao, row.pool_alpha = sub.pool.tao, sub.pool.alpha
                row.alpha_issuance, row.ema_price, row.flow_ema = sub.alpha_issuance, sub.ema_price, sub.flow_ema
                row.flow_this_block, row.blocks_since_start = sub.flow_this_block, sub.blocks_since_start
                row.pending_owner, row.pending_miner = sub.pending.owner, sub.pending.miner
                row.pending_validator = sub.pending.validator
                row.protocol_alpha, row.alpha_recycled = sub.protocol_alpha, sub.alpha_recycled
            block = self.block + 1
            emission = {i.netuid: {"block": block, "tao": i.tao_emission, "tao_in": i.tao_in, "alpha_in": i.alpha_in,
                                   "alpha_out": i.alpha_out} for i in result.injections}
            payouts = {p.netuid: p for p in result.payouts}
            epochs = []
            # Every due epoch runs, even with nothing to pay (emission off): permits, consensus and
            # bonds must still move, or nobody on that subnet could ever set weights.
            for row in rows.values():
                if not epoch_due(block, row.netuid, row.tempo):
                    continue
                p = payouts.pop(row.netuid, None)
                self._epoch(row, block, *((p.owner, p.miner, p.validator) if p else (0, 0, 0)))
                row.last_epoch_block = block
                epochs.append(row.netuid)
            assert not payouts, f"payouts for subnets without a due epoch: {sorted(payouts)}"
            for row in rows.values():
                s.save_subnet(row)
            s.set_meta("total_issuance", result.state.total_issuance)
            s.set_meta("block", block)
            timestamp = time.time() if now is None else now
            s.add_block(block, timestamp)
            self._record_validator_sets(block)
        self._last_emission = emission   # after the commit: a failed block shows nothing of itself
        return {"block": block, "timestamp": timestamp, "epochs": epochs}

    # --- validator sets by block ----------------------------------------------------------------
    def _validator_set_doc(self, netuid: int) -> str:
        """The metagraph's columns the lead order needs, plus who has set weights."""
        metagraph = self.metagraph(netuid)
        doc = {key: metagraph[key] for key in ("uids", "hotkeys", "stake", "validator_permit")}
        doc["weight_setters"] = sorted(uid for uid, *_ in self.store.weights(netuid))
        return json.dumps(doc, sort_keys=True)

    def _record_validator_sets(self, block: int) -> None:
        """Record each subnet's validator set as of this block's start when it changed, so nodes can
        read "the stake order at the first block of window w" however late they ask (the aggregate
        rule needs every node to use the same order). Kept for VALIDATOR_SET_HISTORY blocks."""
        for row in self.store.subnets():
            doc = self._validator_set_doc(row.netuid)
            last = self.store.validator_set(row.netuid, block)
            if last is None or last[1] != doc:
                self.store.add_validator_set(row.netuid, block, doc)
            if block % VALIDATOR_SET_PRUNE_EVERY == 0 and block > VALIDATOR_SET_HISTORY:
                self.store.prune_validator_sets(row.netuid, block - VALIDATOR_SET_HISTORY)

    def _epoch_stake(self, netuid: int, neurons: list[NeuronRow]) -> np.ndarray:
        alpha = self.store.hotkey_stakes(netuid)
        root = self.store.hotkey_stakes(0)
        w = self.params.tao_weight
        return np.array([alpha.get(n.hotkey, 0) + w * root.get(n.hotkey, 0) for n in neurons], dtype=np.float64)

    def _epoch(self, subnet: SubnetRow, block: int, owner: int, miner: int, validator: int) -> None:
        s = self.store
        neurons = s.neurons(subnet.netuid)
        n = len(neurons)
        weights = np.zeros((n, n))
        weights_block = np.full(n, -1, dtype=np.int64)
        for uid, set_at, uids, vals in s.weights(subnet.netuid):
            if uid < n:
                cols = np.array(json.loads(uids), dtype=np.int64)
                keep = cols < n
                weights[uid, cols[keep]] = np.array(json.loads(vals), dtype=np.float64)[keep]
                weights_block[uid] = set_at
        owner_uid = next((x.uid for x in neurons if x.hotkey == subnet.owner_hotkey), None)
        outcome = run_epoch(EpochInputs(
            block=block, stake=self._epoch_stake(subnet.netuid, neurons),
            registered_block=np.array([x.registered_block for x in neurons], dtype=np.int64),
            last_update=np.array([x.last_update for x in neurons], dtype=np.int64),
            weights=weights, weights_block=weights_block, bonds_u16=s.bonds(subnet.netuid, n),
            max_validators=subnet.max_validators, activity_cutoff=subnet.activity_cutoff, kappa=subnet.kappa,
            bond_alpha=subnet.bond_alpha, bonds_penalty=subnet.bonds_penalty, yuma3=subnet.yuma3,
            owner_uid=owner_uid))
        r = outcome.result
        payout = split_payout(owner, miner, validator, np.asarray(r.incentive), np.asarray(r.dividends),
                              np.asarray(r.active_stake))
        for neuron, amount in zip(neurons, payout.per_uid):
            s.add_stake(subnet.netuid, neuron.hotkey, neuron.coldkey, amount)
        s.add_stake(subnet.netuid, subnet.owner_hotkey, subnet.owner, payout.owner)
        subnet.alpha_issuance -= payout.recycled
        s.set_bonds(subnet.netuid, outcome.bonds_u16)
        for i, neuron in enumerate(neurons):
            s.save_neuron(replace(neuron, validator_permit=bool(outcome.validator_permit[i]),
                                  incentive=float(r.incentive[i]), dividends=float(r.dividends[i]),
                                  consensus=float(r.consensus[i]), validator_trust=float(r.validator_trust[i]),
                                  emission=payout.per_uid[i]))

    # --- queries ------------------------------------------------------------------------------
    def head(self) -> dict:
        block = self.block
        return {"block": block, "timestamp": self.store.block_timestamp(block), "genesis_hash": self.genesis_hash}

    def block_timestamp(self, number: int) -> dict:
        ts = self.store.block_timestamp(number)
        if ts is None:
            raise ChainError("unknown_block", f"block {number} does not exist", 404)
        return {"block": number, "timestamp": ts}

    def metagraph(self, netuid: int) -> dict:
        subnet = require_subnet(self.store, netuid)
        neurons = self.store.neurons(netuid)
        stakes = self.store.hotkey_stakes(netuid)
        block = self.block
        return {
            "netuid": netuid, "block": block, "n": len(neurons), "tempo": subnet.tempo,
            "uids": [x.uid for x in neurons], "hotkeys": [x.hotkey for x in neurons],
            "coldkeys": [x.coldkey for x in neurons], "stake": [stakes.get(x.hotkey, 0) for x in neurons],
            "validator_permit": [x.validator_permit for x in neurons],
            "incentive": [x.incentive for x in neurons], "dividends": [x.dividends for x in neurons],
            "consensus": [x.consensus for x in neurons], "validator_trust": [x.validator_trust for x in neurons],
            "emission": [x.emission for x in neurons], "last_update": [x.last_update for x in neurons],
            "registration_block": [x.registered_block for x in neurons],
            "active": [x.last_update + subnet.activity_cutoff >= block for x in neurons],
        }

    def validator_set(self, netuid: int, block: int) -> dict:
        """Uids, hotkeys, stake, permits and weight setters of `netuid` as of the start of `block`."""
        require_subnet(self.store, netuid)
        head = self.block
        if block < 0 or block > head:
            raise ChainError("unknown_block", f"block {block} does not exist (head {head})", 404)
        row = self.store.validator_set(netuid, block)
        if row is None:
            raise ChainError("not_kept", f"the validator set at block {block} is no longer kept "
                                         f"(history: the last {VALIDATOR_SET_HISTORY} blocks)", 404)
        return {"netuid": netuid, "block": block, "recorded_at": row[0], **json.loads(row[1])}

    def commitments(self, netuid: int) -> dict:
        require_subnet(self.store, netuid)
        return {"netuid": netuid, "commitments": {hk: {"block": b, "data": d}
                                                  for hk, b, d in self.store.commitments(netuid)}}

    def weights(self, netuid: int) -> dict:
        require_subnet(self.store, netuid)
        return {"netuid": netuid, "weights": {str(uid): {"block": b, "uids": json.loads(u), "weights": json.loads(v)}
                                              for uid, b, u, v in self.store.weights(netuid)}}

    def pool(self, netuid: int) -> dict:
        r = require_subnet(self.store, netuid)
        return {"netuid": netuid, "tao": r.pool_tao, "alpha": r.pool_alpha,
                "price": r.pool_tao / r.pool_alpha if r.pool_alpha else 0.0, "ema_price": r.ema_price,
                "alpha_issuance": r.alpha_issuance, "protocol_alpha": r.protocol_alpha,
                "pending": {"owner": r.pending_owner, "miner": r.pending_miner, "validator": r.pending_validator},
                "burn": r.burn, "tempo": r.tempo, "owner": r.owner, "owner_hotkey": r.owner_hotkey,
                "last_block_emission": self._last_emission.get(netuid)}

    def subnets(self) -> dict:
        return {"netuids": [r.netuid for r in self.store.subnets()]}

    def account(self, address: str) -> dict:
        balance, nonce, _, _ = self.store.account(address)
        stakes = [{"netuid": n, "hotkey": h, "alpha": a} for n, h, a in self.store.stakes_of(address)]
        return {"address": address, "balance": balance, "nonce": nonce, "stakes": stakes}

    def stake(self, netuid: int, hotkey: str, coldkey: str) -> dict:
        return {"netuid": netuid, "hotkey": hotkey, "coldkey": coldkey,
                "alpha": self.store.stake(netuid, hotkey, coldkey)}

    def audit(self) -> dict:
        """Conservation: TAO issuance and each subnet's alpha issuance against where the units are."""
        s = self.store
        balances, root = s.total_balances(), s.get_int("root_tao")
        subnets = s.subnets()
        pools = sum(r.pool_tao for r in subnets)
        issuance = s.get_int("total_issuance")
        report = {"tao": {"issuance": issuance, "balances": balances, "root_stake": root, "pool_tao": pools,
                          "root_stake_rows": s.total_stake(0), "ok": issuance == balances + root + pools
                          and root == s.total_stake(0)},
                  "alpha": {}}
        for r in subnets:
            held = r.pool_alpha + s.total_stake(r.netuid) + r.pending_owner + r.pending_miner \
                + r.pending_validator + r.protocol_alpha
            report["alpha"][str(r.netuid)] = {"issuance": r.alpha_issuance, "held": held,
                                              "ok": held == r.alpha_issuance}
        report["ok"] = report["tao"]["ok"] and all(a["ok"] for a in report["alpha"].values())
        return report

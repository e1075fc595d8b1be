"""sqlite persistence of the dev chain's state (WAL; one transaction per call and per block).

Money columns are integer rao. sqlite INTEGER is signed 64-bit, comfortably above the 21e15 rao cap.
The store only reads and writes rows; the rules live in calls.py, epoch.py and node.py.
"""
from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    address TEXT PRIMARY KEY, balance INTEGER NOT NULL DEFAULT 0, nonce INTEGER NOT NULL DEFAULT 0,
    last_signature TEXT, last_result TEXT);
CREATE TABLE IF NOT EXISTS hotkey_owner (hotkey TEXT PRIMARY KEY, coldkey TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subnets (
    netuid INTEGER PRIMARY KEY, owner TEXT NOT NULL, owner_hotkey TEXT NOT NULL,
    pool_tao INTEGER NOT NULL, pool_alpha INTEGER NOT NULL, alpha_issuance INTEGER NOT NULL,
    ema_price REAL NOT NULL, flow_ema REAL NOT NULL, flow_this_block INTEGER NOT NULL,
    blocks_since_start INTEGER NOT NULL, tempo INTEGER NOT NULL, emission_enabled INTEGER NOT NULL,
    pending_owner INTEGER NOT NULL, pending_miner INTEGER NOT NULL, pending_validator INTEGER NOT NULL,
    protocol_alpha INTEGER NOT NULL, alpha_recycled INTEGER NOT NULL,
    burn INTEGER NOT NULL, max_uids INTEGER NOT NULL, max_validators INTEGER NOT NULL,
    immunity_period INTEGER NOT NULL, activity_cutoff INTEGER NOT NULL, kappa REAL NOT NULL,
    bond_alpha REAL NOT NULL, bonds_penalty REAL NOT NULL, yuma3 INTEGER NOT NULL,
    last_epoch_block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS neurons (
    netuid INTEGER NOT NULL, uid INTEGER NOT NULL, hotkey TEXT NOT NULL, coldkey TEXT NOT NULL,
    registered_block INTEGER NOT NULL, last_update INTEGER NOT NULL,
    validator_permit INTEGER NOT NULL DEFAULT 0, incentive REAL NOT NULL DEFAULT 0,
    dividends REAL NOT NULL DEFAULT 0, consensus REAL NOT NULL DEFAULT 0,
    validator_trust REAL NOT NULL DEFAULT 0, emission INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (netuid, uid));
CREATE UNIQUE INDEX IF NOT EXISTS neurons_hotkey ON neurons (netuid, hotkey);
CREATE TABLE IF NOT EXISTS stakes (
    netuid INTEGER NOT NULL, hotkey TEXT NOT NULL, coldkey TEXT NOT NULL, alpha INTEGER NOT NULL,
    PRIMARY KEY (netuid, hotkey, coldkey));
CREATE TABLE IF NOT EXISTS weights (
    netuid INTEGER NOT NULL, uid INTEGER NOT NULL, block INTEGER NOT NULL, uids TEXT NOT NULL,
    vals TEXT NOT NULL, PRIMARY KEY (netuid, uid));
CREATE TABLE IF NOT EXISTS bonds (netuid INTEGER PRIMARY KEY, matrix BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS commitments (
    netuid INTEGER NOT NULL, hotkey TEXT NOT NULL, block INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (netuid, hotkey));
CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, timestamp REAL NOT NULL);
CREATE TABLE IF NOT EXISTS validator_sets (
    netuid INTEGER NOT NULL, block INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (netuid, block));
"""


@dataclass
class SubnetRow:
    netuid: int
    owner: str
    owner_hotkey: str
    pool_tao: int
    pool_alpha: int
    alpha_issuance: int
    ema_price: float
    flow_ema: float
    flow_this_block: int
    blocks_since_start: int
    tempo: int
    emission_enabled: bool
    pending_owner: int
    pending_miner: int
    pending_validator: int
    protocol_alpha: int
    alpha_recycled: int
    burn: int
    max_uids: int
    max_validators: int
    immunity_period: int
    activity_cutoff: int
    kappa: float
    bond_alpha: float
    bonds_penalty: float
    yuma3: bool
    last_epoch_block: int


@dataclass
class NeuronRow:
    netuid: int
    uid: int
    hotkey: str
    coldkey: str
    registered_block: int
    last_update: int
    validator_permit: bool = False
    incentive: float = 0.0
    dividends: float = 0.0
    consensus: float = 0.0
    validator_trust: float = 0.0
    emission: int = 0


_SUBNET_COLUMNS = [f.name for f in fields(SubnetRow)]
_NEURON_COLUMNS = [f.name for f in fields(NeuronRow)]


def _subnet(row: tuple) -> SubnetRow:
    s = SubnetRow(*row)
    s.emission_enabled, s.yuma3 = bool(s.emission_enabled), bool(s.yuma3)
    return s


def _neuron(row: tuple) -> NeuronRow:
    n = NeuronRow(*row)
    n.validator_permit = bool(n.validator_permit)
    return n


class Store:
    def __init__(self, path: Path | str):
        self.path = str(path)
        # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE.
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (not a power cut).
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:  # sqlite may already have rolled back on its own
                self.db.execute("ROLLBACK")
            raise

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested scope inside a transaction: on error only its own writes are undone."""
        self.db.execute("SAVEPOINT nested")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK TO nested")
            self.db.execute("RELEASE nested")
            raise
        self.db.execute("RELEASE nested")

    # --- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: object) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, str(value)))

    def get_int(self, key: str) -> int:
        return int(self.get_meta(key, "0"))

    # --- accounts -----------------------------------------------------------------------------
    def account(self, address: str) -> tuple[int, int, str | None, str | None]:
        row = self.db.execute("SELECT balance, nonce, last_signature, last_result FROM accounts WHERE address = ?",
                              (address,)).fetchone()
        return row if row else (0, 0, None, None)

    def balance(self, address: str) -> int:
        return self.account(address)[0]

    def add_balance(self, address: str, delta: int) -> None:
        self.db.execute("INSERT INTO accounts (address, balance) VALUES (?, ?) "
                        "ON CONFLICT(address) DO UPDATE SET balance = balance + excluded.balance", (address, delta))

    def record_call(self, address: str, nonce: int, signature: str, result: str) -> None:
        self.db.execute("INSERT INTO accounts (address, nonce, last_signature, last_result) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(address) DO UPDATE SET nonce = excluded.nonce, "
                        "last_signature = excluded.last_signature, last_result = excluded.last_result",
                        (address, nonce, signature, result))

    def total_balances(self) -> int:
        return self.db.execute("SELECT COALESCE(SUM(balance), 0) FROM accounts").fetchone()[0]

    def hotkey_owner(self, hotkey: str) -> str | None:
        row = self.db.execute("SELECT coldkey FROM hotkey_owner WHERE hotkey = ?", (hotkey,)).fetchone()
        return row[0] if row else None

    def set_hotkey_owner(self, hotkey: str, coldkey: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO hotkey_owner VALUES (?, ?)", (hotkey, coldkey))

    # --- subnets ------------------------------------------------------------------------------
    def subnets(self) -> list[SubnetRow]:
        rows = self.db.execute(f"SELECT {', '.join(_SUBNET_COLUMNS)} FROM subnets ORDER BY netuid").fetchall()
        return [_subnet(r) for r in rows]

    def subnet(self, netuid: int) -> SubnetRow | None:
        row = self.db.execute(f"SELECT {', '.join(_SUBNET_COLUMNS)} FROM subnets WHERE netuid = ?",
                              (netuid,)).fetchone()
        return _subnet(row) if row else None

    def save_subnet(self, s: SubnetRow) -> None:
        values = asdict(s)
        self.db.execute(f"INSERT OR REPLACE INTO subnets ({', '.join(_SUBNET_COLUMNS)}) VALUES "
                        f"({', '.join('?' for _ in _SUBNET_COLUMNS)})",
                        [int(v) if isinstance(v, bool) else v for v in values.values()])

    # --- neurons ------------------------------------------------------------------------------
    def neurons(self, netuid: int) -> list[NeuronRow]:
        rows = self.db.execute(f"SELECT {', '.join(_NEURON_COLUMNS)} FROM neurons WHERE netuid = ? ORDER BY uid",
                               (netuid,)).fetchall()
        return [_neuron(r) for r in rows]

    def neuron_by_hotkey(self, netuid: int, hotkey: str) -> NeuronRow | None:
        row = self.db.execute(f"SELECT {', '.join(_NEURON_COLUMNS)} FROM neurons WHERE netuid = ? AND hotkey = ?",
                              (netuid, hotkey)).fetchone()
        return _neuron(row) if row else None

    def neuron_count(self, netuid: int) -> int:
        return self.db.execute("SELECT COUNT(*) FROM neurons WHERE netuid = ?", (netuid,)).fetchone()[0]

    def is_registered_anywhere(self, hotkey: str) -> bool:
        return self.db.execute("SELECT 1 FROM neurons WHERE hotkey = ? LIMIT 1", (hotkey,)).fetchone() is not None

    def save_neuron(self, n: NeuronRow) -> None:
        values = [int(v) if isinstance(v, bool) else v for v in asdict(n).values()]
        self.db.execute(f"INSERT OR REPLACE INTO neurons ({', '.join(_NEURON_COLUMNS)}) VALUES "
                        f"({', '.join('?' for _ in _NEURON_COLUMNS)})", values)

    def touch_neuron(self, netuid: int, uid: int, block: int) -> None:
        self.db.execute("UPDATE neurons SET last_update = ? WHERE netuid = ? AND uid = ?", (block, netuid, uid))

    # --- stake --------------------------------------------------------------------------------
    def stake(self, netuid: int, hotkey: str, coldkey: str) -> int:
        row = self.db.execute("SELECT alpha FROM stakes WHERE netuid = ? AND hotkey = ? AND coldkey = ?",
                              (netuid, hotkey, coldkey)).fetchone()
        return row[0] if row else 0

    def add_stake(self, netuid: int, hotkey: str, coldkey: str, delta: int) -> None:
        if delta == 0:
            return
        self.db.execute("INSERT INTO stakes VALUES (?, ?, ?, ?) ON CONFLICT(netuid, hotkey, coldkey) "
                        "DO UPDATE SET alpha = alpha + excluded.alpha", (netuid, hotkey, coldkey, delta))
        self.db.execute("DELETE FROM stakes WHERE netuid = ? AND hotkey = ? AND coldkey = ? AND alpha = 0",
                        (netuid, hotkey, coldkey))

    def hotkey_stakes(self, netuid: int) -> dict[str, int]:
        rows = self.db.execute("SELECT hotkey, SUM(alpha) FROM stakes WHERE netuid = ? GROUP BY hotkey", (netuid,))
        return dict(rows.fetchall())

    def total_stake(self, netuid: int) -> int:
        return self.db.execute("SELECT COALESCE(SUM(alpha), 0) FROM stakes WHERE netuid = ?", (netuid,)).fetchone()[0]

    def stakes_of(self, coldkey: str) -> list[tuple[int, str, int]]:
        return self.db.execute("SELECT netuid, hotkey, alpha FROM stakes WHERE coldkey = ? ORDER BY netuid, hotkey",
                               (coldkey,)).fetchall()

    # --- weights, bonds, commitments -----------------------------------------------------------
    def set_weights(self, netuid: int, uid: int, block: int, uids: str, vals: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO weights VALUES (?, ?, ?, ?, ?)", (netuid, uid, block, uids, vals))

    def clear_weights(self, netuid: int, uid: int) -> None:
        self.db.execute("DELETE FROM weights WHERE netuid = ? AND uid = ?", (netuid, uid))

    def weights(self, netuid: int) -> list[tuple[int, int, str, str]]:
        return self.db.execute("SELECT uid, block, uids, vals FROM weights WHERE netuid = ? ORDER BY uid",
                               (netuid,)).fetchall()

    def bonds(self, netuid: int, n: int) -> np.ndarray:
        row = self.db.execute("SELECT matrix FROM bonds WHERE netuid = ?", (netuid,)).fetchone()
        out = np.zeros((n, n), dtype=np.float64)
        if row:
            stored = np.load(io.BytesIO(row[0]), allow_pickle=False)
            m = min(n, stored.shape[0])
            out[:m, :m] = stored[:m, :m]
        return out

    def set_bonds(self, netuid: int, matrix: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(matrix), allow_pickle=False)
        self.db.execute("INSERT OR REPLACE INTO bonds VALUES (?, ?)", (netuid, buf.getvalue()))

    def commit(self, netuid: int, hotkey: str, block: int, data: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO commitments VALUES (?, ?, ?, ?)", (netuid, hotkey, block, data))

    def clear_commitment(self, netuid: int, hotkey: str) -> None:
        self.db.execute("DELETE FROM commitments WHERE netuid = ? AND hotkey = ?", (netuid, hotkey))

    def commitments(self, netuid: int) -> list[tuple[str, int, str]]:
        return self.db.execute("SELECT hotkey, block, data FROM commitments WHERE netuid = ? ORDER BY hotkey",
                               (netuid,)).fetchall()

    # --- blocks -------------------------------------------------------------------------------
    def add_block(self, number: int, timestamp: float) -> None:
        self.db.execute("INSERT OR REPLACE INTO blocks VALUES (?, ?)", (number, timestamp))

    def add_validator_set(self, netuid: int, block: int, doc: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO validator_sets VALUES (?, ?, ?)", (netuid, block, doc))

    def validator_set(self, netuid: int, block: int) -> tuple[int, str] | None:
        """(block it was recorded at, doc) of the newest set recorded at or before `block`."""
        return self.db.execute("SELECT block, doc FROM validator_sets WHERE netuid = ? AND block <= ? "
                               "ORDER BY block DESC LIMIT 1", (netuid, block)).fetchone()

    def prune_validator_sets(self, netuid: int, keep_from: int) -> None:
        """Drop sets older than `keep_from`, except the one in force at `keep_from`."""
        in_force = self.validator_set(netuid, keep_from)
        if in_force is not None:
            self.db.execute("DELETE FROM validator_sets WHERE netuid = ? AND block < ?", (netuid, in_force[0]))

    def block_timestamp(self, number: int) -> float | None:
        row = self.db.execute("SELECT timestamp FROM blocks WHERE number = ?", (number,)).fetchone()
        return row[0] if row else None

"""dTAO economics: pools, emission, subnet shares, injection, distribution; simulator CLI.

The exact per-block API (what the chain calls) lives in `amm.pool`, `amm.emission`, `amm.shares`,
`amm.coinbase` and `amm.ledger`; the simulator in `amm.scenario`, `amm.plan`, `amm.simulate` and
`amm.reference`. See docs/amm.md.
"""

from amm.coinbase import BlockResult, ChainState, Params, Pending, SubnetState, TempoPayout, run_block
from amm.emission import block_emission
from amm.ledger import ConservationError, Ledger
from amm.pool import InsufficientLiquidity, Pool, PoolError, PriceLimitExceeded

__all__ = [
    "BlockResult", "ChainState", "ConservationError", "InsufficientLiquidity", "Ledger", "Params",
    "Pending", "Pool", "PoolError", "PriceLimitExceeded", "SubnetState", "TempoPayout",
    "block_emission", "run_block",
]

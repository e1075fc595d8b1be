"""The local dev chain (dTAO emission, Yuma consensus) and the client processes use to reach it.

envelope.py  the signed-call envelope: canonical call message, signing, structure and signature checks
client.py    ChainClient, the async HTTP client (Bittensor SDK method names); loads no server code
genesis.py   chain parameters and genesis state from the `chain:` section of neurons.yaml
calls.py     each signed call's state transition (transfer, register, stake, weights, commit)
store.py     sqlite state: accounts, subnets, neurons, weights, bonds, commitments, blocks
epoch.py     one subnet's epoch: stake, permits, Yuma, payout of the pending alpha
yuma.py      Yuma consensus (classic bonds and Yuma3)
node.py      the state machine: genesis, calls, block production, queries, audit
server.py    the aiohttp JSON API over a node, and the block producer (docs/chain-api.md)
cli.py       `subnet chain`
"""

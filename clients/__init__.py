"""The process client helpers: typed functions that start Steward's processes
and send them signals, updates and queries, one module per process.

The HTTP API, the CLI, the simulators and the carrier sweep activity all go
through these. Workflows are addressed by their registered names (each
process's contract in domain/), never by importing workflow classes, so a
process using a client never loads workflow code or its sandbox restrictions.

Layer: below activities (the sweep activity opens claims through
clients/carrier_events.py) and above workflows and store; see the import
contracts in pyproject.toml.
"""

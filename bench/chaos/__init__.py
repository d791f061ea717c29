"""The chaos run: the real stack under a seeded load and faults, then the
invariants checked (`make chaos`, `python -m bench.chaos`; docs/chaos.md)."""

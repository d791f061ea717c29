"""Load generator and benchmarks for Steward (`make bench` -> `python -m bench.run`).

Everything here runs against its own throw-away embedded stack; nothing in
`bench/` is imported by the product.
"""

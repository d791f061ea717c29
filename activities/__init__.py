"""Every side effect Steward performs, grouped by the system it touches.

Each module holds small classes whose bound methods are the activities; they
receive their dependencies (the pool, a port, a setting) as constructor
arguments. Which adapter serves which port is decided by the composition root,
workers/activities.py (`build_activities`), which the worker registers.
"""

"""Behaviour comparison: do the workflows send out the same payloads as at a base commit?

Replay tests prove the command sequence only. This folder proves payload
equality: what the workflows hand to activities and local activities (the
audit rows of ``record_transition``, task inputs, notification inputs, ...),
their search-attribute upserts, memo upserts, current details, child
workflow starts, external signals, update results and run results.

Run it (about two minutes on two cores; longer when tests differ, as those
run again):

    .venv/bin/python -m tests.behaviour.compare                  # base 48bc85a
    .venv/bin/python -m tests.behaviour.compare --tests chargeback --base HEAD~3
    .venv/bin/python -m tests.behaviour.compare --new /path/to/another/checkout
    .venv/bin/python -m tests.behaviour.compare --keep /tmp/rec  # keep the .jsonl

or record by hand (the recorder does nothing without the variable):

    STEWARD_RECORD_BEHAVIOUR=/tmp/rec.jsonl \\
        .venv/bin/pytest -p tests.behaviour.recorder tests/workflows

Modules:

* ``recorder.py``: the pytest plugin. It adds an interceptor to every
  ``temporalio.worker.Worker`` the tests create (workflow outbound: activity,
  local activity, child workflow, signal, continue-as-new; workflow inbound:
  input, signals, updates, result; activity inbound: every execution with its
  attempt and what it answered) and wraps the SDK workflow instance's
  ``upsert_search_attributes``, ``upsert_memo`` and ``set_current_details``,
  which the interceptor API does not expose. Nothing seen while replaying is
  recorded. ``uuid.uuid4()`` in the tests' modules is seeded per test. A test
  still running after 90 s is cancelled (STEWARD_RECORD_TEST_TIMEOUT).
* ``normalise.py``: what legitimately differs between two runs (test-made
  ids, run ids, wall-clock times, durations computed from a clock, the order
  of workflows and of concurrently running activities) and how it is
  neutralised; see its docstring.
* ``compare.py``: the command; see its docstring for the modes and the exit
  status.

What it cannot see: anything a test does not exercise (only the paths in
tests/workflows are compared); queries (answers depend on when the test
polls); the command sequence itself and timers (replay tests cover those);
the real activities (the tests
use stand-ins, so a payload's effect on the store or a provider is not
compared); times that differ by less than the tolerance (120 s by default);
current-details values set and overwritten within one workflow task are
recorded although the server never sees them (stricter, not looser); and in
``--tests-from base`` mode, tests that do not run against the new code.
"""

"""The bench's figures: the steady-state window and the samples built on it."""

from __future__ import annotations

import math

from bench.stats import Sample, percentile, steady_window


def test_steady_window_cuts_filling_and_draining() -> None:
    # Filling until the first result at t=2, last run started at t=10, the
    # rest drains until t=13: only the 8 results in (2, 10] count.
    completed = [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.5, 12.0, 13.0]
    assert steady_window(10.0, completed) == (8, 8.0)


def test_no_steady_window_when_every_run_started_before_the_first_result() -> None:
    # Fewer runs than slots: all start at once, the machine never runs full.
    assert steady_window(0.5, [2.0, 2.5, 3.0]) == (0, 0.0)
    assert steady_window(1.0, []) == (0, 0.0)


def test_sample_adds_segments_and_reports_both_rates() -> None:
    sample = Sample("review")
    sample.add_segment(12.0, [1.0] * 100, failed=1, steady=(80, 8.0))
    sample.add_segment(10.0, [2.0] * 100, failed=0, steady=(60, 6.0))
    assert sample.completed == 200 and sample.failed == 1
    assert sample.per_second == 200 / 22.0
    assert sample.steady_per_second == 10.0
    assert math.isnan(Sample("empty").steady_per_second)


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert math.isnan(percentile([], 95))

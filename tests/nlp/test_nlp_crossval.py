"""Tests for the cross-validation helpers."""

from __future__ import annotations

from fairdesk.nlp.crossval import domain_splits, folds, report_at
from fairdesk.nlp.train import Row


def _rows() -> list[Row]:
    return [Row(f"t{i}", i % 2, 0, "retail" if i < 20 else "random_tweet") for i in range(30)]


def test_folds_partition_and_stratify() -> None:
    rows = _rows()
    parts = folds(rows, k=5, seed=0)
    assert sorted(i for f in parts for i in f) == list(range(30))
    for f in parts:
        assert sum(1 for i in f if rows[i].domain == "retail" and rows[i].label == 1) == 2
        assert sum(1 for i in f if rows[i].domain == "random_tweet") == 2
    assert parts == folds(rows, k=5, seed=0)
    assert parts != folds(rows, k=5, seed=1)


def test_report_at_files_triaged_posts() -> None:
    rows = [Row("a", 1), Row("b", 0), Row("c", 0)]
    scores = [0.9, 0.1, 0.1]
    plain = report_at(rows, scores, [None] * 3, 0.5)
    both = report_at(rows, scores, [None] * 3, 0.5, triaged=[False, False, True])
    assert (plain.overall.tp, plain.overall.fp) == (1, 0)
    assert plain.filed is None
    # The classifier's labels are unchanged; the filed figures count the triaged post as a ticket.
    assert (both.overall.tp, both.overall.fp) == (1, 0)
    assert both.filed is not None and (both.filed.tp, both.filed.fp) == (1, 1)
    assert both.n_triaged == 1


def test_leave_one_domain_out_holds_out_each_company_domain_whole() -> None:
    rows = [Row(f"t{i}", i % 2, 0, ("cars", "food", "random_tweet", "random_reply")[i % 4]) for i in range(40)]
    parts = domain_splits(rows)
    assert [{rows[i].domain for i in part} for part in parts] == [{"cars"}, {"food"}]
    assert sorted(i for part in parts for i in part) == [i for i, r in enumerate(rows) if r.domain in ("cars", "food")]

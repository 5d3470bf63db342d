"""Tests for evaluate() and format_report() against figures worked out by hand."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fairdesk.nlp import Classification
from fairdesk.nlp.evaluate import evaluate, format_report, macro_f1_multi, score


class KeywordClassifier:
    """A fake Classifier: a post is a complaint when it contains "bad"."""

    version = "fake"

    def classify_many(self, texts, batch_size: int = 256) -> list[Classification]:
        return [
            Classification(
                "complaint" if "bad" in t else "not_complaint", 1.0 if "bad" in t else 0.0, None, None, self.version
            )
            for t in texts
        ]


# gold / text / domain. Predictions: complaint iff "bad" in text.
ROWS = [
    ("bad service", 1, "retail"),  # TP
    ("bad app", 1, "software"),  # TP
    ("slow again", 1, "retail"),  # FN
    ("bad luck today", 0, "random_tweet"),  # FP
    ("nice day", 0, "random_tweet"),  # TN
    ("thanks", 0, "retail"),  # TN
]


@pytest.fixture
def tiny_csv(tmp_path: Path) -> Path:
    """A six-row labelled CSV with domains; see ROWS for the hand-worked outcome of each row."""
    path = tmp_path / "tiny.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label", "domain"])
        w.writerows(ROWS)
    return path


def test_evaluate_matches_hand_computed_figures(tiny_csv: Path) -> None:
    report = evaluate(KeywordClassifier(), tiny_csv)  # type: ignore[arg-type]
    o = report.overall
    assert (o.tp, o.fp, o.fn, o.tn) == (2, 1, 1, 2)
    assert o.accuracy == pytest.approx(4 / 6)
    assert o.precision == pytest.approx(2 / 3)
    assert o.recall == pytest.approx(2 / 3)
    assert o.f1 == pytest.approx(2 / 3)
    # not-complaint class: P = 2/3, R = 2/3, so macro F1 = 2/3 as well
    assert o.macro_f1 == pytest.approx(2 / 3)
    c = report.company
    assert c is not None
    # company rows: TP, TP, FN, TN -> P = 1, R = 2/3, F1 = 0.8; negatives P = 1/2, R = 1, F1 = 2/3
    assert (c.n, c.tp, c.fp, c.fn, c.tn) == (4, 2, 0, 1, 1)
    assert c.f1 == pytest.approx(0.8)
    assert c.macro_f1 == pytest.approx((0.8 + 2 / 3) / 2)
    assert report.per_domain["retail"].accuracy == pytest.approx(2 / 3)
    assert set(report.per_domain) == {"retail", "software", "random_tweet"}


def test_csv_without_domain_has_no_company_subset(tmp_path: Path) -> None:
    path = tmp_path / "nodomain.csv"
    path.write_text("text,label\nbad,1\ngood,0\n")
    report = evaluate(KeywordClassifier(), path)  # type: ignore[arg-type]
    assert report.company is None and report.per_domain == {}
    assert report.overall.macro_f1 == pytest.approx(1.0)


def test_format_report_lists_subsets(tiny_csv: Path) -> None:
    text = format_report(evaluate(KeywordClassifier(), tiny_csv))  # type: ignore[arg-type]
    assert "overall" in text and "company-addressed" in text and "random_tweet" in text
    assert "0.667" in text


def test_score_with_no_positives_is_zero_not_error() -> None:
    s = score([0, 0], [0, 0])
    assert s.f1 == 0.0 and s.accuracy == 1.0


def test_macro_f1_multi_by_hand() -> None:
    # classes 1: P=1/2 R=1 F1=2/3; 2: P=1 R=1/2 F1=2/3
    assert macro_f1_multi([1, 2, 2], [1, 1, 2]) == pytest.approx(2 / 3)

"""Tests for training: saving, loading and reproducibility."""

from __future__ import annotations

from pathlib import Path

import pytest

from fairdesk.nlp import Classifier, load_classifier
from fairdesk.nlp.train import read_rows, train

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "complaints" / "train.csv"
PROBES = ["my order never arrived", "thank you, lovely staff", "still waiting for a refund", "nice weather today"]


def test_read_rows_limit_and_optional_columns(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("text,label\na,1\nb,0\nc,0\n")
    rows = read_rows(path, limit=2)
    assert [(r.text, r.label, r.severity, r.domain) for r in rows] == [("a", 1, 0, ""), ("b", 0, 0, "")]


def test_tiny_pipeline_learns_its_training_data(tiny: Classifier) -> None:
    assert tiny.classify("@shop my order never arrived and nobody answers").label == "complaint"
    assert tiny.classify("happy birthday to my best friend").label == "not_complaint"


@pytest.mark.slow
def test_same_seed_same_model(tmp_path: Path) -> None:
    if not DATA.is_file():
        pytest.skip(f"training data not found at {DATA}")
    a, b = tmp_path / "a", tmp_path / "b"
    metrics = train(DATA, a, seed=3, limit=300, extra_csv=())
    again = train(DATA, b, seed=3, limit=300, extra_csv=())
    assert metrics["examples"] == 300
    scores_a = [r.score for r in load_classifier(a).classify_many(PROBES)]
    scores_b = [r.score for r in load_classifier(b).classify_many(PROBES)]
    assert scores_a == scores_b
    assert metrics["model_version"] == again["model_version"] == load_classifier(a).version
    # byte-identical files, so the version (a digest of the files) names the trained model
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)

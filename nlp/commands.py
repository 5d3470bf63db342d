"""Typer-compatible command functions for training, evaluating and running the complaint classifier."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import typer

from nlp.classify import DEFAULT_THRESHOLD, MODEL_DIR, load_classifier
from nlp.evaluate import evaluate, format_report
from nlp.train import train

DEFAULT_TRAIN_CSV = Path("../shared/data/complaints/train.csv")


def train_cmd(
    data: Path = typer.Option(DEFAULT_TRAIN_CSV, help="Labelled CSV (text,label[,severity,domain]) to train on."),
    out: Path = typer.Option(MODEL_DIR, help="Directory to write the trained spaCy pipeline to."),
    seed: int = typer.Option(0, help="Random seed; the same data and seed give the same model."),
) -> None:
    """Train the complaint pipeline and save it."""
    metrics = train(data, out, seed=seed)
    typer.echo(json.dumps(metrics, sort_keys=True))


def eval_cmd(
    file: Path = typer.Argument(..., help="Labelled CSV (text,label[,domain,severity]) to score the model on."),
    model: Path | None = typer.Option(None, help="Pipeline directory (default: the shipped model)."),
) -> None:
    """Print accuracy, macro F1 and complaint precision/recall, overall, per domain and for company-addressed posts."""
    typer.echo(format_report(evaluate(load_classifier(model), file)))


def classify_cmd(
    texts: list[str] | None = typer.Argument(None, help="Posts to classify; without any, one post per stdin line."),
    model: Path | None = typer.Option(None, help="Pipeline directory (default: the shipped model)."),
    threshold: float = typer.Option(DEFAULT_THRESHOLD, help="Complaint probability at or above which to file."),
) -> None:
    """Print one JSON object per post: label, score, severity, triage_reason, model_version."""
    classifier = load_classifier(model, threshold=threshold)
    posts = list(texts) if texts else [line.rstrip("\r\n") for line in sys.stdin]
    for result in classifier.classify_many(posts):
        typer.echo(json.dumps(dataclasses.asdict(result), ensure_ascii=False))

"""Typer-compatible command functions for training, evaluating and running the complaint classifier."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from nlp.classify import DEFAULT_THRESHOLD, MODEL_DIR, load_classifier
from nlp.evaluate import evaluate, format_report
from nlp.train import train

DEFAULT_TRAIN_CSV = Path("../shared/data/complaints/train.csv")


def train_cmd(
    data: Annotated[Path, typer.Option(help="Labelled CSV (text,label[,severity,domain,...]) to train on.")] = (
        DEFAULT_TRAIN_CSV
    ),
    out: Annotated[Path, typer.Option(help="Directory to write the trained spaCy pipeline to.")] = MODEL_DIR,
    seed: Annotated[int, typer.Option(help="Random seed; the same data and seed give the same model.")] = 0,
) -> None:
    """Train the complaint pipeline (adds the self-written examples in nlp/data/) and save it."""
    metrics = train(data, out, seed=seed)
    typer.echo(json.dumps(metrics, sort_keys=True))


def eval_cmd(
    file: Annotated[Path, typer.Argument(help="Labelled CSV (text,label[,domain,severity]) to score the model on.")],
    model: Annotated[Path | None, typer.Option(help="Pipeline directory (default: the shipped model).")] = None,
) -> None:
    """Print accuracy, macro F1 and complaint precision/recall, overall, per domain and for company-addressed posts."""
    typer.echo(format_report(evaluate(load_classifier(model), file)))


def classify_cmd(
    texts: Annotated[
        list[str] | None, typer.Argument(help="Posts to classify; without any, one post per stdin line.")
    ] = None,
    model: Annotated[Path | None, typer.Option(help="Pipeline directory (default: the shipped model).")] = None,
    threshold: Annotated[
        float, typer.Option(help="Complaint probability at or above which a post is filed.")
    ] = DEFAULT_THRESHOLD,
) -> None:
    """Print one JSON object per post: label, score, severity, triage_reason, model_version and ticket (whether
    fairdesk files it: a complaint, or a post the model cannot judge, which goes to human triage)."""
    classifier = load_classifier(model, threshold=threshold)
    posts = list(texts) if texts else [line.rstrip("\r\n") for line in sys.stdin]
    for result in classifier.classify_many(posts):
        obj = dataclasses.asdict(result) | {"ticket": result.files_ticket}
        typer.echo(json.dumps(obj, ensure_ascii=False))

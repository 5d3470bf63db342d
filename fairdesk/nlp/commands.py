"""Typer-compatible command functions for training, evaluating and running the complaint classifier."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from fairdesk.nlp.classify import DEFAULT_THRESHOLD, Classifier, load_classifier
from fairdesk.nlp.evaluate import evaluate, format_report
from fairdesk.nlp.train import DataError, read_labelled, train

DEFAULT_TRAIN_CSV = Path("../shared/data/complaints/train.csv")
# A folder of its own in the working directory: the shipped model (nlp/model/) is replaced only by an explicit --out.
DEFAULT_OUT = Path("fairdesk-model")


def _fail(message: str) -> NoReturn:
    typer.echo(f"fairdesk: {message}", err=True)
    raise typer.Exit(1)


def _classifier(model: Path | None, threshold: float = DEFAULT_THRESHOLD) -> Classifier:
    try:
        return load_classifier(model, threshold=threshold)
    except OSError as exc:  # no pipeline at that path (FileNotFoundError says which file it expected)
        _fail(str(exc))


def train_cmd(
    data: Annotated[Path, typer.Option(help="Labelled CSV (text,label[,severity,domain,...]) to train on.")] = (
        DEFAULT_TRAIN_CSV
    ),
    out: Annotated[
        Path,
        typer.Option(help="Directory to write the trained pipeline to; use it with `nlp.model_path`."),
    ] = DEFAULT_OUT,
    seed: Annotated[int, typer.Option(help="Random seed; the same data and seed give the same model.")] = 0,
) -> None:
    """Train the complaint pipeline (adds the self-written examples in nlp/data/) and save it."""
    try:
        if not data.is_file():
            raise DataError(f"{data}: training data not found; pass --data FILE.csv (columns text,label[,...])")
        read_labelled(data)  # every line checked before the long part starts
        metrics = train(data, out, seed=seed)
    except DataError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(metrics, sort_keys=True))


def eval_cmd(
    file: Annotated[Path, typer.Argument(help="Labelled CSV (text,label[,domain,severity]) to score the model on.")],
    model: Annotated[Path | None, typer.Option(help="Pipeline directory (default: the shipped model).")] = None,
) -> None:
    """Print accuracy, macro F1 and complaint precision/recall, overall, per domain and for company-addressed posts."""
    try:
        read_labelled(file)  # a wrong file is reported before the model loads
        report = evaluate(_classifier(model), file)
    except DataError as exc:
        _fail(str(exc))
    typer.echo(format_report(report))


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
    classifier = _classifier(model, threshold)
    posts = list(texts) if texts else [line.rstrip("\r\n") for line in sys.stdin]
    for result in classifier.classify_many(posts):
        obj = dataclasses.asdict(result) | {"ticket": result.files_ticket}
        typer.echo(json.dumps(obj, ensure_ascii=False))

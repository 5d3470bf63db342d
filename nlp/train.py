"""Reproducible training of the complaint pipeline from a labelled CSV and nlp/config.cfg."""

from __future__ import annotations

import csv
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spacy
from spacy.training import Example
from spacy.util import fix_random_seed, load_config, load_model_from_config, minibatch

from nlp.classify import COMPLAINT, NOT_COMPLAINT
from nlp.text import normalise

logger = logging.getLogger(__name__)

CONFIG_PATH = Path(__file__).resolve().parent / "config.cfg"
PIPELINE_NAME = "fairdesk_complaints"
PIPELINE_VERSION = "1.0.0"


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled post from a training CSV."""

    text: str
    label: int  # 1 = complaint
    severity: int = 0  # 0 = none/unknown, 1..4 for complaints
    domain: str = ""


def read_rows(csv_path: Path, limit: int | None = None) -> list[Row]:
    """Read `text,label[,severity,domain]` rows; `limit` keeps the first N (for quick tests)."""
    rows: list[Row] = []
    with Path(csv_path).open(newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            sev = rec.get("severity") or "0"
            rows.append(Row(rec["text"], int(rec["label"]), int(float(sev)), rec.get("domain") or ""))
            if limit is not None and len(rows) >= limit:
                break
    return rows


def _examples(nlp: spacy.Language, rows: Sequence[Row]) -> list[Example]:
    examples = []
    for row in rows:
        cats = {COMPLAINT: float(row.label == 1), NOT_COMPLAINT: float(row.label != 1)}
        examples.append(Example.from_dict(nlp.make_doc(normalise(row.text)), {"cats": cats}))
    return examples


def build_pipeline(
    rows: Sequence[Row], *, seed: int = 0, config_path: Path = CONFIG_PATH, epochs: int | None = None
) -> spacy.Language:
    """Train a fresh pipeline on `rows` in memory and return it; `epochs` overrides training.max_epochs."""
    fix_random_seed(seed)
    config = load_config(config_path, overrides={"system.seed": seed})
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    nlp.meta.update(name=PIPELINE_NAME, version=PIPELINE_VERSION)
    tcfg = config["training"]
    examples = _examples(nlp, rows)
    optimizer = nlp.initialize(lambda: examples)
    order = random.Random(seed)
    batch_size = int(tcfg["batcher"]["size"])
    for epoch in range(int(tcfg["max_epochs"]) if epochs is None else epochs):
        order.shuffle(examples)
        losses: dict[str, float] = {}
        for batch in minibatch(examples, size=batch_size):
            nlp.update(batch, drop=float(tcfg["dropout"]), sgd=optimizer, losses=losses)
        logger.debug("epoch %d losses %s", epoch, losses)
    return nlp


def train(
    csv_path: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    extra_csv: Sequence[Path] = (),
    config_path: Path = CONFIG_PATH,
) -> dict[str, Any]:
    """Train on `csv_path` (plus `extra_csv`), save the pipeline to `out_dir`, return metrics about the run."""
    started = time.perf_counter()
    rows = read_rows(csv_path, limit=limit)
    for extra in extra_csv:
        rows.extend(read_rows(extra))
    nlp = build_pipeline(rows, seed=seed, config_path=config_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(out_dir)
    metrics = {
        "examples": len(rows),
        "complaints": sum(r.label == 1 for r in rows),
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
        "out_dir": str(out_dir),
    }
    logger.info("trained complaint pipeline on %d examples in %.1fs", len(rows), metrics["seconds"])
    return metrics

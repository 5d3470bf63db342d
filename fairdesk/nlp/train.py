"""Reproducible training of the complaint pipeline from a labelled CSV and nlp/config.cfg."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spacy
from spacy.pipeline import TrainablePipe
from spacy.training import Example
from spacy.util import fix_random_seed, load_config, load_model_from_config, minibatch

from fairdesk.nlp.classify import load_pipeline, model_version
from fairdesk.nlp.components import (
    COMPLAINT,
    DOMAIN_KEY,
    EMOTION_KEY,
    EXTRA_KEY,
    NOT_COMPLAINT,
    SENTIMENT_KEY,
    SEVERITY_KEY,
)
from fairdesk.nlp.text import clean, prepare

logger = logging.getLogger(__name__)

CONFIG_PATH = Path(__file__).resolve().parent / "config.cfg"
# Hand-written examples (see nlp/data/README.md) added to every training run unless the caller says otherwise.
SELF_WRITTEN = Path(__file__).resolve().parent / "data" / "self_written.csv"
PIPELINE_NAME = "fairdesk_complaints"
PIPELINE_VERSION = "1.0.0"


@dataclass(frozen=True, slots=True)
class Row:
    """One labelled post from a training CSV."""

    text: str
    label: int  # 1 = complaint
    severity: int = 0  # 0 = none/unknown, 1..4 for complaints
    domain: str = ""
    emotion: str = ""  # optional auxiliary labels (train.csv has them); they shape the complaint model's features
    sentiment: str = ""
    extra: bool = False  # a self-written row: trained on, never used to choose hyper-parameters


class DataError(ValueError):
    """A labelled CSV that cannot be used; the message names the file (and line) and what is wrong, in one line."""


def read_labelled(csv_path: Path, limit: int | None = None) -> list[dict[str, str]]:
    """The rows of a labelled CSV with `text` and a 0/1 `label` (other columns as they are); `limit` keeps the
    first N. Raises DataError for a missing or unreadable file, missing columns or a label that is not 0 or 1."""
    path = Path(csv_path)
    records: list[dict[str, str]] = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            found = list(reader.fieldnames or ())
            if not {"text", "label"} <= set(found):
                raise DataError(f"{path}: needs the columns text and label (found: {', '.join(found) or 'none'})")
            for rec in reader:
                if (rec.get("label") or "").strip() not in {"0", "1"}:
                    raise DataError(f"{path}: line {reader.line_num}: label must be 0 or 1, not {rec.get('label')!r}")
                records.append(rec)
                if limit is not None and len(records) >= limit:
                    break
    except FileNotFoundError as exc:
        raise DataError(f"{path}: not found") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except (OSError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from exc
    return records


def read_rows(csv_path: Path, limit: int | None = None) -> list[Row]:
    """Read `text,label[,severity,domain,emotion,sentiment]` rows; `limit` keeps the first N (for quick tests)."""
    return [
        Row(
            rec["text"],
            int(rec["label"]),
            int(float(rec.get("severity") or "0")),
            rec.get("domain") or "",
            (rec.get("emotion") or "").strip().lower(),
            (rec.get("sentiment") or "").strip().lower(),
        )
        for rec in read_labelled(csv_path, limit)
    ]


def _examples(nlp: spacy.Language, rows: Sequence[Row]) -> list[Example]:
    examples = []
    for row in rows:
        text = prepare(clean(row.text))
        ref = nlp.make_doc(text)
        ref.cats = {COMPLAINT: float(row.label == 1), NOT_COMPLAINT: float(row.label != 1)}
        ref.user_data[DOMAIN_KEY] = row.domain
        ref.user_data[SEVERITY_KEY] = row.severity
        ref.user_data[EMOTION_KEY] = row.emotion
        ref.user_data[SENTIMENT_KEY] = row.sentiment
        ref.user_data[EXTRA_KEY] = row.extra
        examples.append(Example(nlp.make_doc(text), ref))
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
    # Closed-form components (fairdesk_complaint) are fitted here; gradient-trained ones (if the config adds any,
    # e.g. a spaCy textcat) are then updated for training.max_epochs.
    optimizer = nlp.initialize(lambda: examples)
    if not any(isinstance(proc, TrainablePipe) for _, proc in nlp.pipeline):
        return nlp
    order = random.Random(seed)
    batch_size = int(tcfg["batcher"]["size"])
    for epoch in range(int(tcfg["max_epochs"]) if epochs is None else epochs):
        order.shuffle(examples)
        losses: dict[str, float] = {}
        for batch in minibatch(examples, size=batch_size):
            nlp.update(batch, drop=float(tcfg["dropout"]), sgd=optimizer, losses=losses)
        logger.debug("epoch %d losses %s", epoch, losses)
    return nlp


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(
    csv_path: Path,
    out_dir: Path,
    *,
    seed: int = 0,
    limit: int | None = None,
    extra_csv: Sequence[Path] = (SELF_WRITTEN,),
    config_path: Path = CONFIG_PATH,
) -> dict[str, Any]:
    """Train on `csv_path` (plus `extra_csv`, by default the self-written examples), save the pipeline to `out_dir`
    and return facts about the run (example counts, seed, seconds, model version)."""
    started = time.perf_counter()
    rows = read_rows(csv_path, limit=limit)
    for extra in extra_csv:
        rows.extend(dataclasses.replace(r, extra=True) for r in read_rows(extra))
    nlp = build_pipeline(rows, seed=seed, config_path=config_path)
    sources = [{"file": Path(p).name, "sha256": _sha256(Path(p))} for p in (csv_path, *extra_csv)]
    nlp.meta["sources"] = sources
    nlp.meta["fairdesk_training"] = {"examples": len(rows), "limit": limit, "seed": seed}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(out_dir)
    metrics = {
        "examples": len(rows),
        "complaints": sum(r.label == 1 for r in rows),
        "sources": sources,
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
        "out_dir": str(out_dir),
        "model_version": model_version(load_pipeline(out_dir)),
    }
    logger.info("trained complaint pipeline on %d examples in %.1fs", len(rows), metrics["seconds"])
    return metrics

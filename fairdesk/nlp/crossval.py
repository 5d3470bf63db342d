"""Nested cross-validation of the training recipe on a labelled CSV: outer-fold figures, overall and per domain.

Each outer fold trains the whole pipeline on the other folds (plus the self-written rows) exactly as `fairdesk
train` does; every choice the recipe makes from data (the encoder cascade's layers, C and band) is made inside that
training run on its own inner folds, so the held-out fold that reports the score never shaped it. The decision
threshold is the shipped default (0.35), fixed beforehand, not tuned."""

from __future__ import annotations

import argparse
import dataclasses
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fairdesk.nlp.cascade import EncoderCascade
from fairdesk.nlp.classify import DEFAULT_THRESHOLD, severity_level
from fairdesk.nlp.components import COMPLAINT
from fairdesk.nlp.evaluate import Report, build_report, format_report, is_company
from fairdesk.nlp.text import clean, prepare, triage_reason
from fairdesk.nlp.train import CONFIG_PATH, SELF_WRITTEN, Row, build_pipeline, read_rows

DEFAULT_DATA = Path("../shared/data/complaints/train.csv")
ENCODER = "encoder"
RELIABILITY_BINS = 10


def folds(rows: Sequence[Row], k: int = 5, seed: int = 0) -> list[list[int]]:
    """Split row indices into k folds stratified by (domain, label), deterministic for a seed."""
    strata: dict[tuple[str, int], list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        strata[(row.domain, row.label)].append(i)
    out: list[list[int]] = [[] for _ in range(k)]
    rng = random.Random(seed)
    offset = 0
    for key in sorted(strata):
        idx = strata[key]
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            out[(j + offset) % k].append(i)
        offset += len(idx)
    return [sorted(f) for f in out]


def domain_splits(rows: Sequence[Row]) -> list[list[int]]:
    """One held-out part per company-addressed domain (cars, food, ...): scored by a pipeline that never saw a post
    from that domain, a stand-in for customers of a kind of company the training data does not cover. Chatter
    (random_*) rows are never held out; they are in every training part."""
    by_domain: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        if is_company(row.domain):
            by_domain[row.domain].append(i)
    return [by_domain[d] for d in sorted(by_domain)]


@dataclass(slots=True)
class OutOfFold:
    """Held-out predictions for every row."""

    scores: list[float]  # the pipeline's P(complaint)
    fast: list[float]  # the fast component's P(complaint), encoder off
    severity: list[int | None]  # predicted level, as if the post were a complaint
    triaged: list[bool]  # triage files the post whatever the model says
    by_encoder: list[bool]  # the encoder re-judged this post
    choices: list[str] = field(default_factory=list)  # per outer fold: what the inner cross-validation chose

    def subset(self, idx: Sequence[int]) -> OutOfFold:
        """The predictions of rows `idx`, in that order."""
        return OutOfFold(
            [self.scores[i] for i in idx],
            [self.fast[i] for i in idx],
            [self.severity[i] for i in idx],
            [self.triaged[i] for i in idx],
            [self.by_encoder[i] for i in idx],
            self.choices,
        )


def out_of_fold(
    rows: Sequence[Row],
    *,
    k: int = 5,
    seed: int = 0,
    config_path: Path = CONFIG_PATH,
    extra: Sequence[Row] = (),
    splits: Sequence[Sequence[int]] | None = None,
) -> OutOfFold:
    """Train k pipelines, each on k-1 folds (plus `extra`), and score every row with the one that did not see it.
    With `splits`, hold out each of those parts in turn instead (rows in none of them are only trained on)."""
    n = len(rows)
    oof = OutOfFold([0.0] * n, [0.0] * n, [None] * n, [False] * n, [False] * n)
    for fold in splits if splits is not None else folds(rows, k, seed):
        held = set(fold)
        nlp = build_pipeline(
            [r for i, r in enumerate(rows) if i not in held] + list(extra), seed=seed, config_path=config_path
        )
        cleaned = [clean(rows[i].text) for i in fold]
        texts = [prepare(c) for c in cleaned]
        docs = list(nlp.pipe(texts))
        has_encoder = ENCODER in nlp.pipe_names
        fast = [d.cats[COMPLAINT] for d in nlp.pipe(texts, disable=[ENCODER])] if has_encoder else None
        encoder = nlp.get_pipe(ENCODER) if has_encoder else None
        if isinstance(encoder, EncoderCascade):
            blocks = "+".join(str(b) for b in encoder.blocks)
            oof.choices.append(f"blocks {blocks}, C {encoder.c:g}, band {encoder.band:g}, weight {encoder.weight:g}")
        for j, (i, doc, c) in enumerate(zip(fold, docs, cleaned, strict=True)):
            oof.scores[i] = doc.cats[COMPLAINT]
            oof.fast[i] = fast[j] if fast is not None else doc.cats[COMPLAINT]
            oof.severity[i] = severity_level(doc.cats)
            oof.triaged[i] = triage_reason(c) is not None
        if isinstance(encoder, EncoderCascade):
            inside = encoder.in_band(np.asarray([oof.fast[i] for i in fold]))
            for i, flag in zip(fold, inside.tolist(), strict=True):
                oof.by_encoder[i] = bool(flag)
    return oof


def report_at(
    rows: Sequence[Row],
    scores: Sequence[float],
    sev: Sequence[int | None],
    threshold: float,
    triaged: Sequence[bool] | None = None,
) -> Report:
    """Score out-of-fold predictions at one decision threshold (labels as the classifier gives them); with
    `triaged`, the report's `filed` figures also count the posts sent to human triage as filed."""
    return build_report(
        [r.label for r in rows],
        [int(s >= threshold) for s in scores],
        [r.domain for r in rows],
        [r.severity for r in rows],
        list(sev),
        triaged,
    )


def reliability(
    labels: Sequence[int], scores: Sequence[float], bins: int = RELIABILITY_BINS
) -> list[tuple[str, int, float, float]]:
    """(score range, posts, mean score, share that are complaints) per equal-width score bin with posts in it:
    a calibrated score has mean score close to the observed share in every bin."""
    y, p = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    out = []
    for b in range(bins):
        sel = which == b
        if sel.any():
            out.append(
                (f"{b / bins:.1f}-{(b + 1) / bins:.1f}", int(sel.sum()), float(p[sel].mean()), float(y[sel].mean()))
            )
    return out


def format_reliability(table: Sequence[tuple[str, int, float, float]]) -> str:
    """Render reliability() as text, with the expected calibration error (post-weighted |mean score - share|)."""
    total = sum(n for _, n, _, _ in table) or 1
    ece = sum(n * abs(m - s) for _, n, m, s in table) / total
    lines = [f"{'score':<9} {'posts':>6}  {'mean score':>10}  {'complaints':>10}"]
    lines += [f"{r:<9} {n:>6}  {m:10.3f}  {s:10.3f}" for r, n, m, s in table]
    lines.append(f"expected calibration error {ece:.3f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Print nested-CV outer-fold figures for nlp/config.cfg on train.csv: the pipeline, and its fast part alone."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled CSV (text,label,domain,severity)")
    ap.add_argument("--folds", type=int, default=5, help="number of outer folds")
    ap.add_argument("--seed", type=int, default=0, help="seed for the split and for training")
    ap.add_argument("--config", type=Path, default=CONFIG_PATH, help="spaCy config to train with")
    ap.add_argument(
        "--extra",
        type=Path,
        action="append",
        default=None,
        help=f"extra CSV added to every training fold (default: {SELF_WRITTEN.name}; repeatable)",
    )
    ap.add_argument("--no-extra", action="store_true", help="train on the folds of --data only")
    ap.add_argument("--threshold", type=float, action="append", default=[], help="threshold(s) to report")
    ap.add_argument(
        "--leave-domain-out",
        action="store_true",
        help="hold out one company-addressed domain at a time instead of --folds random folds (out-of-domain check)",
    )
    args = ap.parse_args(argv)
    rows = read_rows(args.data)
    extra_paths = [] if args.no_extra else (args.extra or [SELF_WRITTEN])
    extra = [dataclasses.replace(r, extra=True) for path in extra_paths for r in read_rows(path)]
    print(f"data {args.data} ({len(rows)} rows), extra training data: {[str(p) for p in extra_paths]}")
    splits = domain_splits(rows) if args.leave_domain_out else None
    oof = out_of_fold(rows, k=args.folds, seed=args.seed, config_path=args.config, extra=extra, splits=splits)
    if splits is not None:
        # Only the held-out domains were scored; the chatter rows were always trained on.
        held = sorted(i for part in splits for i in part)
        rows, oof = [rows[i] for i in held], oof.subset(held)
        print(f"leave one domain out: {len(splits)} company-addressed domains, each scored by a pipeline without it")
    print(f"{sum(oof.triaged)} of {len(rows)} posts go to human triage (empty, emoji-only or not English).")
    if oof.choices:
        print(f"chosen inside each outer training fold: {'; '.join(oof.choices)}")
        print(f"posts re-judged by the encoder: {sum(oof.by_encoder)} of {len(rows)} ({np.mean(oof.by_encoder):.1%})")
    for t in args.threshold or [DEFAULT_THRESHOLD]:
        scheme = "leave-one-domain-out" if splits is not None else f"outer {args.folds}-fold"
        print(f"\n== {scheme}, threshold {t:.2f}: the pipeline ==")
        print(format_report(report_at(rows, oof.scores, oof.severity, t, oof.triaged)))
        if oof.choices:
            fast = report_at(rows, oof.fast, oof.severity, t)
            c = fast.company
            assert c is not None
            print(
                f"\nfast component alone (encoder off): macro F1 overall {fast.overall.macro_f1:.3f}, "
                f"company-addressed {c.macro_f1:.3f} [P {c.precision:.3f} R {c.recall:.3f}]"
            )
    print("\nreliability of the score (outer folds):")
    print(format_reliability(reliability([r.label for r in rows], oof.scores)))
    print("\nthreshold sweep, macro F1 overall / company-addressed [complaint P / R on company-addressed]:")
    print("  threshold   classifier labels                    filed as tickets (labels + triage)")
    for t in [x / 20 for x in range(2, 16)]:
        rep = report_at(rows, oof.scores, oof.severity, t, oof.triaged)
        line = f"  {t:.2f}"
        for whole, c in ((rep.overall, rep.company), (rep.filed, rep.filed_company)):
            assert whole is not None and c is not None
            line += f"   {whole.macro_f1:.3f} / {c.macro_f1:.3f} [P {c.precision:.3f} R {c.recall:.3f}]"
        print(line)


if __name__ == "__main__":
    main()

"""Stratified k-fold cross-validation of the training recipe on a labelled CSV (prints overall and company figures)."""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fairdesk.nlp.classify import DEFAULT_THRESHOLD, Classifier
from fairdesk.nlp.evaluate import Report, build_report, format_report
from fairdesk.nlp.train import CONFIG_PATH, SELF_WRITTEN, Row, build_pipeline, read_rows

DEFAULT_DATA = Path("../shared/data/complaints/train.csv")


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


@dataclass(frozen=True, slots=True)
class OutOfFold:
    """Held-out predictions for every row."""

    scores: list[float]  # the model's P(complaint)
    severity: list[int | None]  # predicted level, as if the post were a complaint
    triaged: list[bool]  # triage files the post whatever the model says


def out_of_fold(
    rows: Sequence[Row],
    *,
    k: int = 5,
    seed: int = 0,
    config_path: Path = CONFIG_PATH,
    extra: Sequence[Row] = (),
) -> OutOfFold:
    """Train k pipelines, each on k-1 folds (plus `extra`), and score every row with the one that did not see it."""
    oof = OutOfFold([0.0] * len(rows), [None] * len(rows), [False] * len(rows))
    for fold in folds(rows, k, seed):
        held = set(fold)
        train_rows = [r for i, r in enumerate(rows) if i not in held] + list(extra)
        clf = Classifier(build_pipeline(train_rows, seed=seed, config_path=config_path), threshold=0.0)
        # Classification.score is the model's own score, also for posts that triage files anyway.
        for i, res in zip(fold, clf.classify_many([rows[i].text for i in fold]), strict=True):
            oof.scores[i] = res.score
            oof.severity[i] = res.severity
            oof.triaged[i] = res.triage_reason is not None
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


def main(argv: Sequence[str] | None = None) -> None:
    """Print 5-fold cross-validated figures for nlp/config.cfg on train.csv."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled CSV (text,label,domain,severity)")
    ap.add_argument("--folds", type=int, default=5, help="number of folds")
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
    args = ap.parse_args(argv)
    rows = read_rows(args.data)
    extra_paths = [] if args.no_extra else (args.extra or [SELF_WRITTEN])
    extra = [r for path in extra_paths for r in read_rows(path)]
    print(f"data {args.data} ({len(rows)} rows), extra training data: {[str(p) for p in extra_paths]}")
    oof = out_of_fold(rows, k=args.folds, seed=args.seed, config_path=args.config, extra=extra)
    scores, sev, triaged = oof.scores, oof.severity, oof.triaged
    print(f"{sum(triaged)} of {len(rows)} posts go to human triage (empty, emoji-only or not English).")
    for t in args.threshold or [DEFAULT_THRESHOLD]:
        print(f"== {args.folds}-fold CV, threshold {t:.2f} ==")
        print(format_report(report_at(rows, scores, sev, t, triaged)))
        print()
    print("threshold sweep, macro F1 overall / company-addressed [complaint P / R on company-addressed]:")
    print("  threshold   classifier labels                    filed as tickets (labels + triage)")
    for t in [x / 20 for x in range(2, 16)]:
        rep = report_at(rows, scores, sev, t, triaged)
        line = f"  {t:.2f}"
        for whole, c in ((rep.overall, rep.company), (rep.filed, rep.filed_company)):
            assert whole is not None and c is not None
            line += f"   {whole.macro_f1:.3f} / {c.macro_f1:.3f} [P {c.precision:.3f} R {c.recall:.3f}]"
        print(line)


if __name__ == "__main__":
    main()

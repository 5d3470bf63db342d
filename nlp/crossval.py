"""Stratified k-fold cross-validation of the training recipe on a labelled CSV (prints overall and company figures)."""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from nlp.classify import DEFAULT_THRESHOLD, Classifier
from nlp.evaluate import Report, build_report, format_report
from nlp.train import CONFIG_PATH, Row, build_pipeline, read_rows

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


def out_of_fold(
    rows: Sequence[Row],
    *,
    k: int = 5,
    seed: int = 0,
    config_path: Path = CONFIG_PATH,
    extra: Sequence[Row] = (),
) -> tuple[list[float], list[int | None]]:
    """Train k pipelines, each on k-1 folds (plus `extra`), and return every row's held-out score and severity."""
    scores: list[float] = [0.0] * len(rows)
    sev: list[int | None] = [None] * len(rows)
    for fold in folds(rows, k, seed):
        held = set(fold)
        train_rows = [r for i, r in enumerate(rows) if i not in held] + list(extra)
        clf = Classifier(build_pipeline(train_rows, seed=seed, config_path=config_path), threshold=0.0)
        for i, res in zip(fold, clf.classify_many(rows[i].text for i in fold), strict=True):
            scores[i] = res.score
            sev[i] = res.severity
    return scores, sev


def report_at(rows: Sequence[Row], scores: Sequence[float], sev: Sequence[int | None], threshold: float) -> Report:
    """Score out-of-fold predictions at one decision threshold."""
    return build_report(
        [r.label for r in rows],
        [int(s >= threshold) for s in scores],
        [r.domain for r in rows],
        [r.severity for r in rows],
        list(sev),
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Print 5-fold cross-validated figures for nlp/config.cfg on train.csv."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled CSV (text,label,domain,severity)")
    ap.add_argument("--folds", type=int, default=5, help="number of folds")
    ap.add_argument("--seed", type=int, default=0, help="seed for the split and for training")
    ap.add_argument("--config", type=Path, default=CONFIG_PATH, help="spaCy config to train with")
    ap.add_argument("--extra", type=Path, action="append", default=[], help="extra CSV added to every training fold")
    ap.add_argument("--threshold", type=float, action="append", default=[], help="threshold(s) to report")
    args = ap.parse_args(argv)
    rows = read_rows(args.data)
    extra = [r for path in args.extra for r in read_rows(path)]
    scores, sev = out_of_fold(rows, k=args.folds, seed=args.seed, config_path=args.config, extra=extra)
    for t in args.threshold or [DEFAULT_THRESHOLD]:
        print(f"== {args.folds}-fold CV, threshold {t:.2f} ==")
        print(format_report(report_at(rows, scores, sev, t)))
        print()
    print("threshold sweep (macro F1 overall / company-addressed, complaint P/R on company-addressed):")
    for t in [x / 20 for x in range(2, 16)]:
        rep = report_at(rows, scores, sev, t)
        assert rep.company is not None
        c = rep.company
        print(f"  {t:.2f}: {rep.overall.macro_f1:.3f} / {c.macro_f1:.3f}   P={c.precision:.3f} R={c.recall:.3f}")


if __name__ == "__main__":
    main()

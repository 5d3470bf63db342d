"""Scores of a Classifier on a labelled CSV: overall, per domain, and on company-addressed posts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fairdesk.nlp.classify import COMPLAINT, Classifier
from fairdesk.nlp.train import read_labelled

# Domains starting with this are tweets not addressed to any company (easy negatives).
RANDOM_DOMAIN_PREFIX = "random"
COMPANY = "company-addressed"


@dataclass(frozen=True, slots=True)
class Scores:
    """Binary scores with complaint as the positive class; F1 values are 0 when undefined."""

    n: int
    accuracy: float
    macro_f1: float
    precision: float  # complaint precision
    recall: float  # complaint recall
    f1: float  # complaint F1
    tp: int
    fp: int
    fn: int
    tn: int


@dataclass(frozen=True, slots=True)
class Report:
    """Scores for the whole file, the company-addressed subset (if domains are given) and each domain."""

    overall: Scores
    company: Scores | None
    per_domain: dict[str, Scores] = field(default_factory=dict)
    severity_macro_f1: float | None = None  # on true complaints with a known severity, if the CSV has one
    # What becomes a ticket: the complaints plus the posts the model cannot judge (human triage), if known.
    filed: Scores | None = None
    filed_company: Scores | None = None
    n_triaged: int = 0


def score(y_true: Sequence[int], y_pred: Sequence[int]) -> Scores:
    """Compute Scores from 0/1 gold labels and predictions (1 = complaint)."""
    # Imported here: scikit-learn (with scipy) costs ~80 MB and a second of start-up, which `fairdesk classify`
    # (same command module) should not pay.
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    if len(y_true) != len(y_pred):
        raise ValueError("y_true and y_pred differ in length")
    n = len(y_true)
    if n == 0:
        return Scores(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, 0)
    (tn, fp), (fn, tp) = confusion_matrix(y_true, y_pred, labels=[0, 1]).tolist()
    prec, rec, f1, _ = precision_recall_fscore_support(y_true, y_pred, labels=[0, 1], zero_division=0.0)
    return Scores(n, (tp + tn) / n, float(f1.mean()), float(prec[1]), float(rec[1]), float(f1[1]), tp, fp, fn, tn)


def macro_f1_multi(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Macro F1 over the classes present in `y_true` (used for severity levels)."""
    from sklearn.metrics import f1_score

    labels = sorted(set(y_true))
    if not labels:
        return 0.0
    return float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0.0))


def is_company(domain: str) -> bool:
    """True for posts addressed to a company (any domain not starting with "random")."""
    return not domain.startswith(RANDOM_DOMAIN_PREFIX)


def build_report(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    domains: Sequence[str] | None = None,
    severity_true: Sequence[int] | None = None,
    severity_pred: Sequence[int | None] | None = None,
    triaged: Sequence[bool] | None = None,
) -> Report:
    """Assemble a Report from gold labels, predictions and (optionally) domains, severities and triage flags."""
    overall = score(y_true, y_pred)
    company = filed = filed_company = None
    per_domain: dict[str, Scores] = {}
    filed_pred = [int(p or t) for p, t in zip(y_pred, triaged, strict=True)] if triaged is not None else None
    if filed_pred is not None:
        filed = score(y_true, filed_pred)
    if domains is not None and any(domains):
        idx = [i for i, d in enumerate(domains) if is_company(d)]
        company = score([y_true[i] for i in idx], [y_pred[i] for i in idx])
        if filed_pred is not None:
            filed_company = score([y_true[i] for i in idx], [filed_pred[i] for i in idx])
        for dom in sorted(set(domains)):
            di = [i for i, d in enumerate(domains) if d == dom]
            per_domain[dom] = score([y_true[i] for i in di], [y_pred[i] for i in di])
    sev_f1 = None
    if severity_true is not None and severity_pred is not None:
        pairs = [(t, p or 0) for t, p in zip(severity_true, severity_pred, strict=True) if t > 0]
        if pairs:
            sev_f1 = macro_f1_multi([t for t, _ in pairs], [p for _, p in pairs])
    n_triaged = sum(bool(t) for t in triaged) if triaged is not None else 0
    return Report(overall, company, per_domain, sev_f1, filed, filed_company, n_triaged)


def evaluate(classifier: Classifier, csv_path: Path) -> Report:
    """Classify every row of a `text,label[,domain][,severity]` CSV and score the predictions."""
    rows = read_labelled(csv_path)
    results = classifier.classify_many(r["text"] for r in rows)
    y_true = [int(r["label"]) for r in rows]
    y_pred = [int(c.label == COMPLAINT) for c in results]
    domains = [r.get("domain") or "" for r in rows]
    has_sev = bool(rows) and all((r.get("severity") or "") != "" for r in rows)
    sev_true = [int(float(r["severity"])) for r in rows] if has_sev else None
    sev_pred = [c.severity for c in results] if has_sev else None
    triaged = [c.triage_reason is not None for c in results]
    return build_report(y_true, y_pred, domains, sev_true, sev_pred, triaged)


def _line(name: str, s: Scores) -> str:
    return (
        f"{name:<20} {s.n:>5}  {s.accuracy:6.3f}  {s.macro_f1:6.3f}  {s.precision:6.3f}  {s.recall:6.3f}  {s.f1:6.3f}"
    )


def format_report(report: Report) -> str:
    """Render a Report as a fixed-width text table."""
    head = f"{'subset':<20} {'n':>5}  {'acc':>6}  {'macroF1':>6}  {'P(c)':>6}  {'R(c)':>6}  {'F1(c)':>6}"
    lines = [head, _line("overall", report.overall)]
    if report.company is not None:
        lines.append(_line(COMPANY, report.company))
    if report.per_domain:
        lines.append("")
        lines.extend(_line(dom, s) for dom, s in report.per_domain.items())
    if report.filed is not None and report.n_triaged:
        lines.append("")
        lines.append(
            f"filed as tickets: the complaints plus {report.n_triaged} post(s) the model cannot judge "
            "(empty, emoji-only, not English), sent to human triage"
        )
        lines.append(_line("filed: overall", report.filed))
        if report.filed_company is not None:
            lines.append(_line("filed: company", report.filed_company))
    if report.severity_macro_f1 is not None:
        lines.append("")
        lines.append(f"severity macro F1 (true complaints, levels 1-4): {report.severity_macro_f1:.3f}")
    return "\n".join(lines)

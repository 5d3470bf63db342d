"""Throughput of the shipped complaint pipeline against spaCy's tokenizer alone, on one core, plus memory."""

from __future__ import annotations

import os

# One core: pin BLAS/OpenMP pools before numpy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import csv  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "complaints" / "train.csv"
FALLBACK = ["@shop my order never arrived and nobody answers", "what a lovely day at the beach with friends"]


def _rss_mb() -> tuple[float, float]:
    fields = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, val = line.partition(":")
            fields[key] = val.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _texts(path: Path, n: int) -> list[str]:
    base = FALLBACK
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as fh:
            base = [r["text"] for r in csv.DictReader(fh)]
    return [base[i % len(base)] for i in range(n)]


def _median_rate(fn: Callable[[], object], n: int, runs: int) -> tuple[float, float]:
    """(posts/s of the first, cold pass; median posts/s of `runs` warm passes)."""
    start = time.perf_counter()
    fn()  # first pass fills the string store and the per-token n-gram caches
    cold = n / (time.perf_counter() - start)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return cold, n / statistics.median(times)


def main() -> None:
    """Print posts/s for tokenizer-only, nlp.pipe and Classifier.classify_many, their ratio, and RSS."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV with a text column")
    ap.add_argument("--n", type=int, default=10_000, help="posts per run")
    ap.add_argument("--runs", type=int, default=5, help="timed runs (the median is reported)")
    ap.add_argument("--model", type=Path, default=None, help="pipeline dir (default: the shipped model)")
    args = ap.parse_args()

    rss0, _ = _rss_mb()
    from fairdesk.nlp.classify import Classifier, load_pipeline
    from fairdesk.nlp.text import clean, prepare

    nlp = load_pipeline(args.model)
    rss_loaded, _ = _rss_mb()
    clf = Classifier(nlp)
    texts = _texts(args.data, args.n)
    prepared = [prepare(clean(t)) for t in texts]

    def tokenize() -> None:
        for _ in nlp.tokenizer.pipe(prepared, batch_size=256):
            pass

    def pipe() -> None:
        for _ in nlp.pipe(prepared, batch_size=256):
            pass

    def classify() -> None:
        clf.classify_many(texts)

    _, tok = _median_rate(tokenize, len(texts), args.runs)
    cold, full = _median_rate(pipe, len(texts), args.runs)
    _, e2e = _median_rate(classify, len(texts), args.runs)
    rss_end, peak = _rss_mb()
    print(f"model            {clf.version}  pipeline={nlp.pipe_names}")
    print(f"posts per run    {len(texts)}  runs={args.runs} (median)")
    print(f"tokenizer only   {tok:10.0f} posts/s")
    print(f"fairdesk.nlp.pipe         {full:10.0f} posts/s   ratio pipeline/tokenizer = {full / tok:.3f}")
    print(f"classify_many    {e2e:10.0f} posts/s   (cleaning + triage + nlp.pipe)")
    print(f"fairdesk.nlp.pipe, cold   {cold:10.0f} posts/s   (first pass of a fresh process, caches empty)")
    print(
        f"RSS              {rss0:.0f} MB before import, {rss_loaded:.0f} MB loaded, {rss_end:.0f} MB after runs, "
        f"peak {peak:.0f} MB"
    )


if __name__ == "__main__":
    main()

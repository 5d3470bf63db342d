"""Throughput of the complaint pipeline against spaCy's tokenizer alone, on one core; memory and cold start.

By default the pipeline is trained here on four fifths of train.csv (the self-written rows too) and timed on the
other fifth, repeated: the encoder re-judges only the posts the fast model is unsure of, and a model is far surer of
posts it was trained on, so timing the shipped model on train.csv would flatter it. RSS and cold start (a fresh
process: imports, load, first post) are measured on the shipped model."""

from __future__ import annotations

import os

# One core: pin BLAS/OpenMP pools before numpy is imported (ONNX Runtime runs on one thread by itself).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "complaints" / "train.csv"
# Run in a fresh interpreter: the time and memory a daemon pays to classify its first post.
COLD_START = """
import json, sys, time
t = time.perf_counter()
from fairdesk.nlp import load_classifier
clf = load_classifier(None if sys.argv[1] == "-" else sys.argv[1])
clf.classify("@shop my order never arrived and nobody answers")
took = time.perf_counter() - t
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"seconds": took, "rss_mb": int(status["VmRSS"].split()[0]) / 1024}))
"""


def _rates(fns: dict[str, Callable[[], object]], n: int, runs: int) -> dict[str, list[float]]:
    """posts/s of each function in each of `runs` rounds; the functions take turns within a round, so a load that
    comes and goes on a shared machine touches all of them alike. One untimed round first fills the caches."""
    for fn in fns.values():
        fn()
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            out[name].append(n / (time.perf_counter() - start))
    return out


def _cold_start(model: Path | None, repeats: int) -> tuple[float, float]:
    """Median seconds and resident MB of a fresh process that loads the pipeline and classifies one post."""
    got = []
    for _ in range(repeats):
        cmd = [sys.executable, "-c", COLD_START, str(model) if model else "-"]
        got.append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    return statistics.median(g["seconds"] for g in got), statistics.median(g["rss_mb"] for g in got)


def main() -> None:
    """Print posts/s for tokenizer-only, nlp.pipe (and its fast part alone) and classify_many, ratios, RSS."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled CSV (train.csv)")
    ap.add_argument("--n", type=int, default=10_000, help="posts per run")
    ap.add_argument("--runs", type=int, default=5, help="timed runs (the median is reported)")
    ap.add_argument("--model", type=Path, default=None, help="time this pipeline dir on --data instead of training")
    args = ap.parse_args()

    seconds, rss = _cold_start(args.model, 3)
    from fairdesk.nlp.classify import Classifier, load_pipeline
    from fairdesk.nlp.crossval import folds
    from fairdesk.nlp.text import clean, prepare
    from fairdesk.nlp.train import SELF_WRITTEN, read_rows, train

    rows = read_rows(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model is None:
            held = folds(rows, 5, 0)[0]
            train_csv = Path(tmp) / "train.csv"
            keep = set(range(len(rows))) - set(held)
            with args.data.open(encoding="utf-8") as fh:
                lines = fh.read().splitlines(keepends=True)
            # read_rows keeps file order and train.csv has no multi-line fields, so line i + 1 is row i.
            train_csv.write_text(lines[0] + "".join(lines[i + 1] for i in sorted(keep)), encoding="utf-8")
            train(train_csv, Path(tmp) / "model", extra_csv=(SELF_WRITTEN,))
            base = [rows[i].text for i in held]
            nlp = load_pipeline(Path(tmp) / "model")
            where = f"trained on 4/5 of {args.data.name} + self-written rows, timed on the held-out fifth"
        else:
            base = [r.text for r in rows]
            nlp = load_pipeline(args.model)
            where = f"{args.model}, timed on {args.data.name} (posts it may have been trained on)"
    clf = Classifier(nlp)
    texts = [base[i % len(base)] for i in range(args.n)]
    prepared = [prepare(clean(t)) for t in texts]

    def tokenize() -> None:
        for _ in nlp.tokenizer.pipe(prepared, batch_size=256):
            pass

    def pipe() -> None:
        for _ in nlp.pipe(prepared, batch_size=256):
            pass

    def fast_only() -> None:
        for _ in nlp.pipe(prepared, batch_size=256, disable=["encoder"]):
            pass

    def classify() -> None:
        clf.classify_many(texts)

    share = 0.0
    if "encoder" in nlp.pipe_names:
        import numpy as np

        fast = np.array([d.cats["complaint"] for d in nlp.pipe(prepared[: len(base)], disable=["encoder"])])
        share = float(nlp.get_pipe("encoder").in_band(fast).mean())
    start = time.perf_counter()
    pipe()  # the first pass of this process: string store and per-token n-gram caches empty
    cold = len(texts) / (time.perf_counter() - start)
    got = _rates({"tok": tokenize, "pipe": pipe, "fast": fast_only, "e2e": classify}, len(texts), args.runs)
    tok, full, fast_rate, e2e = (statistics.median(got[k]) for k in ("tok", "pipe", "fast", "e2e"))
    ratio = statistics.median(p / t for p, t in zip(got["pipe"], got["tok"], strict=True))
    fast_ratio = statistics.median(p / t for p, t in zip(got["fast"], got["tok"], strict=True))
    print(f"model            {clf.version}  pipeline={nlp.pipe_names}")
    print(f"                 {where}")
    print(f"posts per run    {len(texts)}  rounds={args.runs} (medians)")
    print(f"tokenizer only   {tok:10.0f} posts/s")
    print(
        f"nlp.pipe         {full:10.0f} posts/s   ratio pipeline/tokenizer = {ratio:.3f} (median of per-round ratios)"
    )
    print(f"  encoder share  {share:10.1%} of posts re-judged by the sentence encoder")
    print(f"  fast part only {fast_rate:10.0f} posts/s   ratio = {fast_ratio:.3f} (encoder disabled)")
    print(f"classify_many    {e2e:10.0f} posts/s   (cleaning + triage + nlp.pipe)")
    print(f"nlp.pipe, cold   {cold:10.0f} posts/s   (first pass of this process, caches empty)")
    print(f"cold start       {seconds:10.2f} s        (fresh process: imports, load, first post; median of 3)")
    print(f"RSS              {rss:10.0f} MB       (that process, pipeline loaded and one post classified)")


if __name__ == "__main__":
    main()

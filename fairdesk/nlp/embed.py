"""Static sentence embeddings from the WordLlama token table shipped inside the `wordllama` PyPI wheel."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

# We only ever read local files; make sure nothing under tokenizers reaches for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tokenizers import Tokenizer  # noqa: E402

logger = logging.getLogger(__name__)

# Files inside the installed wordllama package. We read them directly: WordLlama.load() looks for the tokenizer
# in the wrong folder and then tries to download it, and importing wordllama configures root logging.
_PACKAGE = "wordllama"
_WEIGHTS = ("weights", "l2_supercat_256.safetensors")
_TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")
_TENSOR = "embedding.weight"
_DTYPES = {"F16": np.float16, "F32": np.float32}
# Sentences longer than this many sub-word tokens are cut (tweets are ~40).
MAX_TOKENS = 256


class EmbeddingUnavailable(RuntimeError):
    """The wordllama package (which carries the embedding table) is not installed or is damaged."""


def _package_dir() -> Path:
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingUnavailable("the 'wordllama' package is not installed (pip install wordllama==0.4.0.post1)")
    return Path(next(iter(spec.submodule_search_locations)))


def _read_safetensors(path: Path, key: str) -> np.ndarray:
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    meta = header[key]
    start, end = meta["data_offsets"]
    base = 8 + size
    arr = np.frombuffer(raw[base + start : base + end], dtype=_DTYPES[meta["dtype"]])
    return arr.reshape(meta["shape"]).astype(np.float32)


class StaticEmbedder:
    """Mean of WordLlama token vectors (256 dimensions), L2-normalised; empty text gives a zero vector."""

    def __init__(self, table: np.ndarray, tokenizer: Tokenizer) -> None:
        self.table = np.ascontiguousarray(table, dtype=np.float32)
        self.dim = int(self.table.shape[1])
        self.tokenizer = tokenizer
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return one row per text."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = [enc.ids for enc in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        filled = lengths > 0
        if filled.any():
            flat = np.fromiter((i for row in ids for i in row), dtype=np.int64, count=int(lengths.sum()))
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[filled]
            out[filled] = np.add.reduceat(self.table[flat], starts, axis=0) / lengths[filled, None]
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            np.divide(out, norms, out=out, where=norms > 0)
        return out


@lru_cache(maxsize=1)
def load_embedder() -> StaticEmbedder:
    """Load (once per process) the embedding table and tokenizer from the installed wordllama package."""
    root = _package_dir()
    try:
        table = _read_safetensors(root.joinpath(*_WEIGHTS), _TENSOR)
        tokenizer = Tokenizer.from_file(str(root.joinpath(*_TOKENIZER)))
    except (OSError, KeyError, ValueError) as exc:
        raise EmbeddingUnavailable(f"cannot read the WordLlama files under {root}: {exc}") from exc
    logger.debug("loaded WordLlama table %s from %s", table.shape, root)
    return StaticEmbedder(table, tokenizer)

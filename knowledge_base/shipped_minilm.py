"""The shipped all-MiniLM-L6-v2 on engines that need neither sentence-transformers nor transformers at run
time, and give the same vectors as sentence-transformers (tests/knowledge_base/test_embeddings.py bounds the
difference).

- onnxruntime in float32 serves queries and small jobs: it starts without importing torch (a search in about a
  second), and is the reference the other engines are held to.
- For ingest batches, `ShippedMiniLM` measures the engines this CPU can run (onnxruntime float32 and 8-bit, a
  TorchScript trace in float32 and bfloat16) on the first large batch and keeps the fastest that agrees with
  float32 (`knowledge_base.calibration`): a CPU flag says what instructions exist, not what is faster.

Every engine tokenizes a whole job at once, groups texts of similar token counts into batches under a token
budget (padding only to the longest text of each batch), and runs batches on one thread per core, each engine
single-threaded: a 384-wide model splits badly across threads, and a thread that waits on another spins.

The files are exported once from the shipped weights (transformers is needed for that step only) into the
models folder beside the store.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge_base.calibration import Calibration, CalibrationCache, calibrate
from knowledge_base.embeddings import Embedder, OnEmbedded
from knowledge_base.torch_env import cap_kernel_cache

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import onnxruntime
    import torch
    from tokenizers import Tokenizer
    from transformers import PreTrainedModel

    from knowledge_base.embeddings import Vectors

    TokenIds = npt.NDArray[np.int64]
    """A batch's token ids or attention mask, one row a text, padded to its longest."""
    Batch = tuple[list[int], TokenIds, TokenIds]
    """(positions of its texts in the job, ids, mask)."""

ONNX_NAME = "all-MiniLM-L6-v2.onnx"
INT8_NAME = "all-MiniLM-L6-v2.int8.onnx"
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
REFERENCE = "onnx float32"
TOKEN_BUDGET = 2048  # padded tokens per batch: smaller batches stay in cache (16-25% faster than 32 a batch here)


def traced_name(dtype: str) -> str:
    return f"all-MiniLM-L6-v2.{dtype}.pt"


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _Encoder(Embedder):
    """The tokenizer every engine shares (the model's own, with its truncation length), batching by token
    count, and the worker threads."""

    engine = ""

    def __init__(
        self, model_name: str, model_dir: Path, path: Path, batch_size: int = 32, workers: int | None = None
    ) -> None:
        self.model_name = model_name
        self.model_dir = model_dir
        self.path = path
        self.batch_size = batch_size
        self.workers = workers or default_workers()
        self.token_budget = TOKEN_BUDGET
        self._loading = threading.Lock()

    @cached_property
    def max_length(self) -> int:
        config = self.model_dir / "sentence_bert_config.json"
        return int(json.loads(config.read_text()).get("max_seq_length", 256)) if config.exists() else 256

    @cached_property
    def tokenizer(self) -> Tokenizer:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(self.max_length)
        tokenizer.no_padding()  # the file asks for 128 tokens of padding; `batches` pads each batch to its own longest
        return tokenizer

    @cached_property
    def _pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.workers, thread_name_prefix=f"kbagent-embed-{self.engine}")

    def batches(self, texts: list[str]) -> list[Batch]:
        """(positions, ids, mask): texts sorted by token count, each batch padded to its own longest and holding
        at most `token_budget` padded tokens and `batch_size` texts."""
        import numpy as np

        encodings = self.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        groups: list[list[int]] = []
        for i in order:  # ascending, so the newest text is the longest of its batch
            group = groups[-1] if groups else None
            fits = group is not None and len(group) < self.batch_size
            if group is not None and fits and (len(group) + 1) * len(encodings[i].ids) <= self.token_budget:
                group.append(i)
            else:
                groups.append([i])
        out = []
        for group in groups:
            width = len(encodings[group[-1]].ids)
            ids = np.zeros((len(group), width), dtype=np.int64)
            mask = np.zeros((len(group), width), dtype=np.int64)
            for row, i in enumerate(group):
                n = len(encodings[i].ids)
                ids[row, :n], mask[row, :n] = encodings[i].ids, 1
            out.append((group, ids, mask))
        return out

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_many(self, texts: list[str], on_embedded: OnEmbedded | None = None) -> list[list[float]]:
        return self.encode(texts, on_embedded).tolist()

    def encode(self, texts: list[str], on_embedded: OnEmbedded | None = None) -> Vectors:
        """Unit vectors (float32 array) in the order of `texts`; `on_embedded` is told as batches finish."""
        import numpy as np

        out = np.zeros((len(texts), 384), dtype=np.float32)
        if not texts:
            return out
        self.load()
        batches = self.batches(texts)
        if self.workers == 1 or len(batches) == 1:
            for positions, ids, mask in batches:
                out[positions] = self._run(ids, mask)
                if on_embedded:
                    on_embedded(len(positions))
            return out
        with self._single_threaded():
            for positions, vectors in self._in_parallel(batches):
                out[positions] = vectors
                if on_embedded:
                    on_embedded(len(positions))
        return out

    def _in_parallel(self, batches: list[Batch]) -> Iterator[tuple[list[int], Vectors]]:
        """At most two batches a worker in flight, so an interrupt waits for those only."""
        todo = iter(batches)
        running: dict[Future[Vectors], list[int]] = {}
        try:
            for positions, ids, mask in todo:
                running[self._pool.submit(self._run, ids, mask)] = positions
                if len(running) >= 2 * self.workers:
                    break
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield running.pop(future), future.result()
                    following = next(todo, None)
                    if following is not None:
                        running[self._pool.submit(self._run, following[1], following[2])] = following[0]
        finally:
            for future in running:
                future.cancel()

    @contextmanager
    def _single_threaded(self) -> Iterator[None]:
        yield

    def load(self) -> None:
        """Build (and export, the first time) the engine's model."""

    def _run(self, ids: TokenIds, mask: TokenIds) -> Vectors:
        raise NotImplementedError


class OnnxEmbedder(_Encoder):
    """onnxruntime, one thread a session run (runs in parallel on the worker threads); `quantized`: 8-bit
    weights in blocks of 32 and 8-bit activations per row block (onnxruntime's MatMulNBits), which holds
    float32's vectors where whole-tensor 8-bit activations did not (cosine 0.9997 against 0.994)."""

    def __init__(
        self,
        model_name: str,
        model_dir: Path,
        path: Path,
        batch_size: int = 32,
        workers: int | None = None,
        quantized: bool = False,
    ) -> None:
        super().__init__(model_name, model_dir, path, batch_size, workers)
        self.quantized = quantized
        self.engine = "onnx int8" if quantized else "onnx float32"

    @cached_property
    def session(self) -> onnxruntime.InferenceSession:
        import onnxruntime

        with self._loading:
            if not self.path.exists():
                float_path = self.path.with_name(ONNX_NAME)
                if not float_path.exists():
                    export_onnx(self.model_dir, float_path)
                if self.quantized:
                    export_int8(float_path, self.path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def load(self) -> None:
        self.session  # noqa: B018
        self.tokenizer  # noqa: B018

    def _run(self, ids: TokenIds, mask: TokenIds) -> Vectors:
        import numpy as np

        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})[0]
        pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)


class TracedEmbedder(_Encoder):
    """The TorchScript trace (pooling and normalising included), in float32 or bfloat16, on the CPU."""

    def __init__(
        self,
        model_name: str,
        model_dir: Path,
        path: Path,
        batch_size: int = 32,
        dtype: str = "float32",
        workers: int | None = None,
    ) -> None:
        super().__init__(model_name, model_dir, path, batch_size, workers)
        self.dtype = dtype
        self.engine = f"torch {dtype}"

    @cached_property
    def model(self) -> torch.jit.ScriptModule:
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

    def load(self) -> None:
        self.model  # noqa: B018

    @contextmanager
    def _single_threaded(self) -> Iterator[None]:
        """torch's thread count is the process's: one per worker while batches run in parallel."""
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def _run(self, ids: TokenIds, mask: TokenIds) -> Vectors:
        import torch

        with torch.inference_mode():
            return self.model(*(torch.from_numpy(a) for a in (ids, mask, 0 * ids))).float().numpy()


def _load_hf(model_dir: Path, dtype: str = "float32") -> tuple[PreTrainedModel, tuple[torch.Tensor, ...]]:
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


def _wrapped(model: PreTrainedModel, pool: bool) -> torch.nn.Module:
    """The transformer as a module of the three inputs: its hidden states, or (pool) the finished vectors."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
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


def export_int8(float_path: Path, path: Path) -> None:
    """Every MatMul of the float export as MatMulNBits: 8-bit symmetric weights in blocks of 32, computed in
    8 bits (accuracy level 4); written atomically. About a second."""
    import logging

    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    logging.getLogger("onnxruntime.quantization").setLevel(logging.ERROR)
    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=True, accuracy_level=4, bits=8)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(float_path)), algo_config=config)
    quantizer.process()
    partial = _atomic(path)
    quantizer.model.save_model_to_file(str(partial), use_external_data_format=False)
    partial.replace(path)


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
    """Queries and small jobs through onnxruntime in float32 (milliseconds a query, no torch import); large
    jobs through the engine `chosen` by name, or else the one the calibration measured fastest on this CPU
    (measured on the first job of `CALIBRATE_AT` chunks or more, then cached with the CPU's identity)."""

    SMALL_JOB_CHARS = 8000  # a query, or a question's excerpt sentences: not worth starting torch for
    CALIBRATE_AT = 128  # chunks: a job this large pays for a few seconds of measuring, once per CPU

    def __init__(
        self,
        onnx: OnnxEmbedder,
        engines: dict[str, Callable[[], Embedder]],
        chosen: str | None = None,
        cache: CalibrationCache | None = None,
    ) -> None:
        self.model_name = onnx.model_name
        self.onnx = onnx
        self._factories = engines
        self._engines: dict[str, Embedder] = {REFERENCE: onnx}
        self.chosen = chosen
        self.cache = cache or CalibrationCache(None)
        self.calibration: Calibration | None = None

    def engine(self, name: str) -> Embedder:
        if name not in self._engines:
            self._engines[name] = self._factories[name]()
        return self._engines[name]

    @property
    def engine_names(self) -> list[str]:
        return [REFERENCE, *(n for n in self._factories if n != REFERENCE)]

    @property
    def batch_size(self) -> int:
        return self.onnx.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.onnx.batch_size = value
        for engine in self._engines.values():
            engine.batch_size = value  # type: ignore[attr-defined]

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self.embed_many(texts)

    def embed_many(self, texts: list[str], on_embedded: OnEmbedded | None = None) -> list[list[float]]:
        return self.engine_for(texts).embed_many(texts, on_embedded)

    def embed_query(self, text: str) -> list[float]:
        return self.onnx.embed_query(text)

    def load(self) -> None:
        """The query engine: what an answer's first search needs (the engine for large jobs loads with one)."""
        self.onnx.load()

    def engine_for(self, texts: list[str]) -> Embedder:
        """The chosen engine once it is known or loaded; onnxruntime for small jobs; a large job first measures
        the engines when nothing is chosen yet for this CPU."""
        name = self.chosen
        if name is None and self.calibration is None:
            self.calibration = self.cache.load(self.engine_names)
        if name is None and self.calibration is None and len(texts) >= self.CALIBRATE_AT:
            self.calibration = calibrate({n: self.engine(n) for n in self.engine_names}, REFERENCE, texts)
            self.cache.save(self.calibration)
        if name is None and self.calibration is not None:
            name = self.calibration.chosen
        if name is None or name == REFERENCE:
            return self.onnx
        if name not in self._engines and sum(len(t) for t in texts) <= self.SMALL_JOB_CHARS:
            return self.onnx
        return self.engine(name)

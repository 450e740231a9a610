"""LangChain's own standard suites (`langchain-tests`) against our retriever, embedders and agent tools, on the
real store and the real embedding model.

Standard tests that cannot apply here:
- `test_init_from_env` (embeddings, tools): our parts read no environment variables themselves; the settings
  (`KBAGENT_*`) are read once by `kbagent.settings` and passed in. The property is left empty, so the standard
  test checks nothing — it runs, it is not overridden.
Everything else runs as LangChain wrote it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.tools import BaseTool
from langchain_tests.integration_tests import (
    EmbeddingsIntegrationTests,
    RetrieversIntegrationTests,
    ToolsIntegrationTests,
)
from langchain_tests.unit_tests import EmbeddingsUnitTests, ToolsUnitTests

from ingest import IngestConfig, build_ingestor
from kbagent.components import open_knowledge_base
from kbagent.settings import Settings
from knowledge_base import KnowledgeBase
from knowledge_base.embeddings import Embedder, SentenceTransformerEmbedder, resolve_local_model
from knowledge_base.retriever import KnowledgeBaseRetriever
from knowledge_base.shipped_minilm import ONNX_NAME, OnnxEmbedder
from tests.support.web_site import Site, web_site  # noqa: F401
from tools.calculator import make_calculator_tool
from tools.knowledge_search import make_search_tool
from tools.scraper import make_scrape_tool, make_scraper

DOCS = {
    "ferries.md": "# Ferry timetable\n\nThe first ferry to Skerry Island leaves at 07:40 from Pier 9.\n",
    "tickets.md": "# Ferry tickets\n\nA return ferry ticket to Skerry Island costs 14 euros; children ride free.\n",
    "winter.md": "# Winter ferries\n\nIn winter the Skerry Island ferry runs twice a day, weather allowing.\n",
    "bakery.md": "# Bakery\n\nThe harbour bakery sells cardamom buns for 3.50 each.\n",
    "library.md": "# Library\n\nThe island library lends books for three weeks.\n",
}


@pytest.fixture(scope="module")
def ferry_kb(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[KnowledgeBase]:
    root = tmp_path_factory.mktemp("langchain-kb")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    settings = Settings(data_dir=root / "data", collection="langchain", _env_file=None)
    with open_knowledge_base(settings, embedder) as kb:
        build_ingestor(IngestConfig(), kb).run([docs])
        yield kb


# ---- the retriever ---------------------------------------------------------------------------------------------


class TestKnowledgeBaseRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True)
    def _kb(self, ferry_kb: KnowledgeBase) -> None:
        self.kb = ferry_kb

    @property
    def retriever_constructor(self) -> type[KnowledgeBaseRetriever]:
        return KnowledgeBaseRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"kb": self.kb, "k": 2}

    @property
    def retriever_query_example(self) -> str:
        return "When does the ferry to Skerry Island leave?"


def test_as_retriever_documents_carry_metadata_scores_mode_and_filters(ferry_kb: KnowledgeBase) -> None:
    retriever = ferry_kb.as_retriever(k=2, mode="dense")
    docs = retriever.invoke("first ferry Skerry Island")
    assert len(docs) == 2 and docs[0].metadata["title"] == "Ferry timetable"
    for doc in docs:
        assert isinstance(doc, Document) and doc.id == doc.metadata["chunk_id"]
        assert doc.metadata["source"].endswith(".md") and doc.metadata["doc_type"]
        assert isinstance(doc.metadata["score"], float) and isinstance(doc.metadata["similarity"], float)
    keyword = ferry_kb.as_retriever(k=3, mode="keyword").invoke("cardamom")
    assert [d.metadata["title"] for d in keyword] == ["Bakery"] and "bm25" in keyword[0].metadata
    ferries_only = ferry_kb.as_retriever(k=5, filters={"source_prefix": str(Path(docs[0].metadata["source"]))})
    assert {d.metadata["title"] for d in ferries_only.invoke("ferry")} == {"Ferry timetable"}
    assert len(retriever.invoke("ferry", k=1)) == 1  # per-call k overrides the retriever's
    with pytest.raises(ValueError, match="mode must be one of"):
        retriever.invoke("ferry", mode="fuzzy")


async def test_as_retriever_async_gives_what_sync_gives(ferry_kb: KnowledgeBase) -> None:
    retriever = ferry_kb.as_retriever(k=3)
    sync = retriever.invoke("ferry ticket price")
    async_docs = await retriever.ainvoke("ferry ticket price")
    assert [d.id for d in async_docs] == [d.id for d in sync]


# ---- the embedders ---------------------------------------------------------------------------------------------


def _onnx_params() -> dict[str, Any]:
    """The shipped model on onnxruntime, exported (once) where the default settings keep it."""
    settings = Settings(_env_file=None)
    name = "all-MiniLM-L6-v2"
    model_dir = Path(resolve_local_model(name))
    return {"model_name": name, "model_dir": model_dir, "path": settings.store.models_path / ONNX_NAME}


class _OnnxEmbedder:
    @property
    def embeddings_class(self) -> type[OnnxEmbedder]:
        return OnnxEmbedder

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return _onnx_params()


class TestOnnxEmbedderUnit(_OnnxEmbedder, EmbeddingsUnitTests):
    pass


class TestOnnxEmbedderStandard(_OnnxEmbedder, EmbeddingsIntegrationTests):
    @pytest.fixture(autouse=True)
    def _exported(self, embedder: Embedder) -> None:
        embedder.embed_query("export the ONNX file once, through the default path")


class TestSentenceTransformerEmbedderStandard(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[SentenceTransformerEmbedder]:
        return SentenceTransformerEmbedder

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model_name": "all-MiniLM-L6-v2"}


def test_the_configured_embedder_is_a_langchain_embeddings(embedder: Embedder) -> None:
    from langchain_core.embeddings import Embeddings

    assert isinstance(embedder, Embeddings)
    [doc_vector] = embedder.embed_documents(["The first ferry leaves at 07:40."])
    query_vector = embedder.embed_query("The first ferry leaves at 07:40.")
    # The same space: documents may go through the bfloat16 TorchScript export and queries through the float32
    # ONNX one (the shipped model, once torch is loaded), so the vectors agree to a cosine, not to every digit.
    cosine = sum(a * b for a, b in zip(doc_vector, query_vector, strict=True))
    assert len(doc_vector) == len(query_vector) and cosine > 0.999, cosine


# ---- the three agent tools -------------------------------------------------------------------------------------


class _SearchTool:
    @pytest.fixture(autouse=True)
    def _kb(self, ferry_kb: KnowledgeBase) -> None:
        self.kb = ferry_kb

    @property
    def tool_constructor(self) -> BaseTool:
        return make_search_tool(self.kb, default_k=2)  # type: ignore[no-any-return]

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"query": "first ferry to Skerry Island", "k": 2}


class TestSearchToolUnit(_SearchTool, ToolsUnitTests):
    pass


class TestSearchToolStandard(_SearchTool, ToolsIntegrationTests):
    pass


def test_search_tool_invoked_on_its_own_numbers_passages(ferry_kb: KnowledgeBase) -> None:
    out = make_search_tool(ferry_kb).invoke({"query": "cardamom buns", "k": 1})
    assert out.startswith("<retrieved_passages>") and "[1] Bakery" in out and "[2]" not in out


class _Calculator:
    @property
    def tool_constructor(self) -> BaseTool:
        return make_calculator_tool()  # type: ignore[no-any-return]

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"expression": "17.5% of 2,340"}


class TestCalculatorToolUnit(_Calculator, ToolsUnitTests):
    pass


class TestCalculatorToolStandard(_Calculator, ToolsIntegrationTests):
    pass


class _Scraper:
    @pytest.fixture(autouse=True)
    def _site(self, web_site: Site) -> Iterator[None]:  # noqa: F811
        with web_site.fetcher() as fetcher:
            self.site, self.scraper = web_site, make_scraper(fetcher)
            yield

    @property
    def tool_constructor(self) -> BaseTool:
        return make_scrape_tool(self.scraper)  # type: ignore[no-any-return]

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"url": self.site.url + "/article"}


class TestScrapeToolUnit(_Scraper, ToolsUnitTests):
    pass


class TestScrapeToolStandard(_Scraper, ToolsIntegrationTests):
    pass

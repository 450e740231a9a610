"""A one-shot `kbagent ask` reads the chat model on a thread of its own while it imports the rest and loads the
embedder: Ctrl+C still ends it within seconds while that model is loading, and what building the model raised is
what ask reports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kbagent.lazy import Soon
from knowledge_base.embeddings import Embedder
from tests.support.paths import VENV_BIN


def test_soon_hands_over_the_value_or_what_building_it_raised() -> None:
    assert Soon(lambda: 42, "test-soon").result() == 42

    def fails() -> int:
        raise ValueError("no such model")

    with pytest.raises(ValueError, match="no such model"):
        Soon(fails, "test-soon").result()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc for the thread that opens the model")
def test_ctrl_c_while_the_chat_model_loads_ends_ask_within_seconds(tmp_path: Path, embedder: Embedder) -> None:
    embedder.load()  # the shared models folder has its ONNX export before the command starts
    model = tmp_path / "model.gguf"
    os.mkfifo(model)  # llama.cpp blocks opening it: a model that takes forever to load
    exe = VENV_BIN / "kbagent"
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "kbagent.cli"]
    proc = subprocess.Popen(
        [*command, "ask", "--json", "--model", f"gguf:{model}", "What is a stand?"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KBAGENT_DATA_DIR": str(tmp_path / "data")},
    )
    try:
        deadline = time.monotonic() + 240
        while not _opening_a_fifo(proc.pid):  # llama.cpp, on its thread, waits for the pipe's writer
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "llama.cpp never opened the model file"
            time.sleep(0.2)
        time.sleep(2)
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert took < 5, f"Ctrl+C took {took:.1f} s"


def _opening_a_fifo(pid: int) -> bool:
    """Whether a thread of the process is blocked opening a named pipe for reading (Linux: its wait channel)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if (task / "wchan").read_text() == "wait_for_partner":
                return True
        except OSError:
            continue
    return False


def test_the_chat_model_starts_loading_before_chroma_or_langchain_is_imported(tmp_path: Path) -> None:
    """What `ask` does before it starts the model's thread imports neither (about a second, under the GIL)."""
    code = (
        "import sys; from kbagent.cli import _components, _thread_kb_info\n"
        "_thread_kb_info(_components(), None, None)\n"
        "print(sorted(m for m in ('chromadb', 'langchain_core', 'tools.web_search') if m in sys.modules))"
    )
    environ = {**os.environ, "KBAGENT_DATA_DIR": str(tmp_path / "data")}
    made = "from kbagent.cli import _components, _thread_kb; _thread_kb(_components(), None, None)"
    subprocess.run([sys.executable, "-c", made], check=True, env=environ, timeout=120)  # the default knowledge base
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"

"""Hugging Face transformers models from a local GGUF file, a local model folder or the Hugging Face cache (never
downloaded): 4-bit NF4 through bitsandbytes wherever the installed bitsandbytes runs (a CUDA GPU, or a CPU through
its CPU backend, tested with 0.50), else 16-bit weights on a GPU and full precision on a CPU. `current_plan()`
decides, and `kbagent models` shows the same plan's `describe()`."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypedDict

from agent.config import AgentConfig
from kbagent.errors import ConfigError
from knowledge_base.embeddings import cpu_computes_bfloat16, resolve_local_model
from tools.data_tags import add_model_tokens

if TYPE_CHECKING:
    import torch
    from langchain_huggingface import ChatHuggingFace
    from transformers import BitsAndBytesConfig, PreTrainedModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadPlan:
    """Where and how an `hf:` model is loaded here."""

    device: Literal["cuda", "cpu"]
    dtype: str  # the weights' dtype, or with `nf4` the dtype 4-bit layers compute in
    nf4: bool

    def describe(self) -> str:
        if self.nf4 and self.device == "cuda":
            return f"CUDA GPU: 4-bit NF4 through bitsandbytes, computing in {self.dtype}"
        if self.nf4:
            return f"no GPU: 4-bit NF4 through bitsandbytes on the CPU, computing in {self.dtype} (slow)"
        if self.device == "cuda":
            return f"CUDA GPU: 16-bit {self.dtype} weights (bitsandbytes is not installed)"
        return "no GPU and no bitsandbytes CPU backend: full precision (float32) on the CPU (slow)"


def plan_for(cuda: bool, bnb_devices: frozenset[str], cuda_bf16: bool, cpu_bf16: bool) -> LoadPlan:
    if cuda:
        return LoadPlan("cuda", "bfloat16" if cuda_bf16 else "float16", "cuda" in bnb_devices)
    if "cpu" in bnb_devices:
        return LoadPlan("cpu", "bfloat16" if cpu_bf16 else "float32", True)
    return LoadPlan("cpu", "float32", False)


def current_plan() -> LoadPlan:
    import torch

    cuda = torch.cuda.is_available()
    return plan_for(cuda, _bnb_devices(), cuda and torch.cuda.is_bf16_supported(), cpu_computes_bfloat16())


def _bnb_devices() -> frozenset[str]:
    """The devices the installed bitsandbytes quantises on (older releases have no such list: CUDA only)."""
    if importlib.util.find_spec("bitsandbytes") is None:
        return frozenset()
    # On AVX512-BF16 CPUs bitsandbytes 0.50 tries to fetch an optional kernel from the Hugging Face Hub at import
    # (only with the `kernels` package, which kbagent doesn't install; offline anyway) and warns that it can't;
    # it computes with its bundled CPU kernels instead.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
    try:
        import bitsandbytes
    except Exception as exc:  # a broken install means no quantisation, not no model
        log.warning("bitsandbytes does not load (%s): no 4-bit models", exc)
        return frozenset()
    return frozenset(getattr(bitsandbytes, "supported_torch_devices", {"cuda"}))


def locate(name: str) -> tuple[str, str | None]:
    """(model folder or cached model id, the GGUF file's name in that folder or None)."""
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ConfigError(f"no GGUF file at {path}")
        path = path.resolve()
        return str(path.parent), path.name
    if path.is_dir() and not (path / "config.json").is_file():
        raise ConfigError(f"{path} holds no transformers model (config.json); hf: also takes a .gguf file")
    return resolve_local_model(name), None


def build_hf_chat_model(name: str, config: AgentConfig, token: str | None = None) -> ChatHuggingFace:
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
    from transformers import AutoTokenizer, pipeline

    folder, gguf = locate(name)
    plan = current_plan()
    if plan.device == "cpu":
        log.warning("hf:%s: %s", name, plan.describe())
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf, local_files_only=True, token=token)
        model = load_model(folder, gguf, plan, token)
    except OSError as exc:
        raise ConfigError(f"hf:{name} is not available offline; point it at a local model folder ({exc})") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"hf:{name} has no chat template; use an instruction-tuned model")
    # The tokenizer reads its added tokens (`<|im_start|>`) from prompt text: outside text must not hold them.
    add_model_tokens([*tokenizer.all_special_tokens, *(t.content for t in tokenizer.added_tokens_decoder.values())])
    generate = pipeline(
        "text-generation",
        model=model,
        tokenizer=tokenizer,
        max_new_tokens=config.max_tokens,
        do_sample=config.temperature > 0,
        temperature=config.temperature or None,
        return_full_text=False,
    )
    llm = HuggingFacePipeline(pipeline=generate, model_id=name)
    return ChatHuggingFace(llm=llm, tokenizer=tokenizer, model_id=name)


class _Source(TypedDict):
    """Where `from_pretrained` reads the weights from, and as what."""

    local_files_only: bool
    token: str | None
    dtype: torch.dtype


class _Placement(TypedDict, total=False):
    """Where `from_pretrained` puts the weights, quantised or not."""

    device_map: str
    quantization_config: BitsAndBytesConfig


def load_model(folder: str, gguf: str | None, plan: LoadPlan, token: str | None = None) -> PreTrainedModel:
    """The model as `plan` says. transformers won't quantise while it reads a GGUF file, so a GGUF model is read
    dense (dequantised) on the CPU first and quantised from that state dict."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, plan.dtype)
    source: _Source = {"local_files_only": True, "token": token, "dtype": dtype}
    placed: _Placement = {"device_map": "auto"} if plan.device == "cuda" else {}
    if plan.nf4:
        placed = {"device_map": "auto" if plan.device == "cuda" else "cpu", "quantization_config": nf4_config(dtype)}
    if gguf is None:
        return AutoModelForCausalLM.from_pretrained(folder, **source, **placed)
    if not plan.nf4:
        return AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, **source, **placed)
    dense = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, **source)
    model_config, model_class, state = dense.config, type(dense), dense.state_dict()
    del dense
    if hasattr(model_config, "quantization_config"):
        del model_config.quantization_config  # the GGUF reader's marker: these weights are dense now
    return model_class.from_pretrained(None, config=model_config, state_dict=state, dtype=dtype, **placed)


def nf4_config(compute_dtype: torch.dtype) -> BitsAndBytesConfig:
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=True,
    )

"""Hugging Face transformers models: 4-bit NF4 through bitsandbytes on a CUDA GPU, full precision on a CPU."""

from __future__ import annotations

import logging
from typing import Any

from agent.config import AgentConfig
from kbagent.errors import ConfigError
from knowledge_base.embeddings import resolve_local_model

log = logging.getLogger(__name__)


def build_hf_chat_model(name: str, config: AgentConfig, token: str | None = None, quantize: str = "4bit") -> Any:
    import torch
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    path = resolve_local_model(name)
    kwargs: dict[str, Any] = {"local_files_only": True, "token": token}
    if torch.cuda.is_available():
        kwargs.update(device_map="auto", quantization_config=quantization_config(quantize))
    else:
        log.warning("no CUDA GPU: %s runs in full precision on the CPU, which is slow", name)
        kwargs.update(dtype=torch.float32)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, token=token)
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise ConfigError(f"hf:{name} is not available offline; point it at a local model folder ({exc})") from exc
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"hf:{name} has no chat template; use an instruction-tuned model")
    generate = pipeline(
        "text-generation",
        model=model,
        tokenizer=tokenizer,
        max_new_tokens=config.max_tokens,
        do_sample=config.temperature > 0,
        temperature=config.temperature or None,
        return_full_text=False,
    )
    llm = HuggingFacePipeline(pipeline=generate, model_id=str(path))
    return ChatHuggingFace(llm=llm, tokenizer=tokenizer, model_id=str(path))


def quantization_config(mode: str) -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    if mode == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )

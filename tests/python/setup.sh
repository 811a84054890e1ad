#!/usr/bin/env bash
# Installs componentize-py (from PyPI) into target/python/venv, for the test
# that builds examples/word-count-py, a skill written in Python against
# wit/skill.wit, and runs it in the c41 sandbox (host/tests/all/authors.rs).
# Idempotent.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="$root/target/python"
python="${PYTHON:-python3}"
version="0.25.1"
mkdir -p "$dir"
if [[ ! -x "$dir/venv/bin/python" ]]; then
    "$python" -m venv "$dir/venv"
fi
if ! "$dir/venv/bin/componentize-py" --version 2>/dev/null | grep -q "$version"; then
    "$dir/venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$version"
fi
"$dir/venv/bin/componentize-py" --version

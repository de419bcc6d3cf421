# Stylebot: the Discord style-transfer bot, ready for an NVIDIA GPU (see docs/docker.md).
#
# Why python:3.11-slim and not nvidia/cuda: the torch wheels on PyPI (2.14.1+cu130) carry their own CUDA 13.0
# runtime, cuBLAS and cuDNN as nvidia-* pip packages (3.2 GB installed), so a CUDA base image would only add a
# second, unused copy of the same libraries. The one thing the wheels cannot bring is the kernel driver: the NVIDIA
# Container Toolkit mounts the host's (it must be >= 580, the first series that runs CUDA 13.0) when the
# container asks for a GPU (`docker run --gpus all`, or the device reservation in compose.yaml).
# Bookworm + Python 3.11 is the combination the development and CI machines test. For a reproducible release,
# pin the digest: --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# The builder turns the source tree into a wheel, so the runtime image holds the installed package and not the
# tests, docs and benchmarks.
FROM ${PYTHON_IMAGE} AS builder
WORKDIR /src
COPY . .
RUN python3 -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="stylebot" \
      org.opencontainers.image.description="Discord bot that paints a photo in the style of an artwork (Gatys et al. neural style transfer)" \
      org.opencontainers.image.licenses="MIT"

# STYLEBOT_JOURNAL overrides [journal] path so that the journal lands on the /data volume whatever the config
# says. compute,utility: CUDA plus nvidia-smi; the toolkit mounts only the driver parts named here.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TORCH_HOME=/home/app/.cache/torch \
    STYLEBOT_JOURNAL=/data/stylebot.sqlite3 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# The venv stays root-owned so the bot cannot rewrite its own code; the weights cache and the journal directory
# belong to the bot, and exist before VOLUME so that fresh named volumes inherit that ownership.
RUN groupadd --gid 10001 app \
    && useradd --create-home --uid 10001 --gid app --shell /usr/sbin/nologin app \
    && mkdir -p /config /data /home/app/.cache/torch \
    && chown -R app:app /data /home/app/.cache

# Dependencies come before the project so that a code change rebuilds a layer of a few hundred KB instead of
# the multi-GB torch one. The pins are the versions the test suite ran against; `pip check` below fails the build
# if they ever drift outside the ranges in pyproject.toml.
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu gives a CPU-only image without the CUDA libraries.
ARG TORCH_INDEX_URL=https://pypi.org/simple
RUN python3 -m venv /opt/venv \
    && pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==2.14.1 torchvision==0.29.1 \
    && pip install --no-cache-dir pillow==13.0.0 discord.py==2.7.1 aiohttp==3.14.5 tqdm==4.70.1

# WITH_RAY=1 adds Ray Serve, for the [executor] kind that hands jobs to a Ray cluster.
ARG WITH_RAY=0
RUN case "${WITH_RAY}" in \
        1) pip install --no-cache-dir "ray[serve]==2.60.0" ;; \
        0) ;; \
        *) echo "WITH_RAY must be 0 or 1, got '${WITH_RAY}'" >&2; exit 1 ;; \
    esac

COPY --from=builder /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
    && pip check \
    && rm -rf /tmp/wheels

# Numeric, so that runtimes enforcing runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
WORKDIR /home/app

# FETCH_WEIGHTS=1 bakes the VGG-19 ImageNet weights (548 MB) into the image, for hosts that cannot reach
# download.pytorch.org at run time. Left at 0, the bot downloads them on first start into the TORCH_HOME volume,
# where they survive container rebuilds. A fresh named volume mounted there starts as a copy of the baked files.
ARG FETCH_WEIGHTS=0
RUN case "${FETCH_WEIGHTS}" in \
        1) python -m stylizer --download-weights ;; \
        0) ;; \
        *) echo "FETCH_WEIGHTS must be 0 or 1, got '${FETCH_WEIGHTS}'" >&2; exit 1 ;; \
    esac

# Declared after the weights step: with the classic builder, anything a later step writes under a VOLUME is lost.
VOLUME ["/home/app/.cache/torch", "/data"]

# The bot touches its [bot] health_file every ~20 s while connected to Discord; --healthcheck exits 0 only while
# that file is fresh. The start period covers the first-run weights download and the Discord login.
HEALTHCHECK --interval=30s --timeout=20s --start-period=300s --retries=3 \
    CMD ["python", "-m", "bot", "--healthcheck", "--config", "/config/config.toml"]

# The token comes from DISCORD_TOKEN in the environment, or from the mounted config file.
CMD ["python", "-m", "bot", "--config", "/config/config.toml"]

# One image for both Compose services: the MLflow tracking server and the trainer that runs
# `python -m registry ...`. The project itself is installed, so the mlflow pinned in pyproject.toml is
# the one in the image. BASE_IMAGE may be any Debian-like image with python3 and pip on PATH.
# Targets: the default (the last stage) is `app`; `scale` adds what the scale-out stack's tracking
# servers need (compose.scale.yaml, docs/scaling.md).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE} AS app

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN useradd --create-home --uid 10001 --user-group app \
    && mkdir -p /app /data/artifacts \
    && chown -R app:app /data

WORKDIR /app

# Dependencies first, from pyproject.toml and an empty stub package: this layer is rebuilt only when
# pyproject.toml changes, not on every source edit.
# EXTRA_PIP: more packages, such as psycopg2-binary for a PostgreSQL backend store.
ARG EXTRA_PIP=""
COPY pyproject.toml ./
RUN mkdir registry && touch registry/__init__.py \
    && python -m pip install . ${EXTRA_PIP} \
    && rm -rf registry build *.egg-info

# Then the source, installed over the stub without touching the dependencies.
COPY registry ./registry
RUN python -m pip install --no-deps --force-reinstall . \
    && rm -rf build *.egg-info

USER app
EXPOSE 5000
CMD ["python", "-m", "registry", "--help"]

# The scale-out stack's tracking servers (and trainer): the PostgreSQL driver, boto3 for the S3 artifact
# store and the servers' start script, over `app`. The wheels come from a stage of their own, so a
# source edit (a new `app`) reinstalls them from the cache instead of downloading them again.
FROM ${BASE_IMAGE} AS scale-wheels
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels 'psycopg2-binary>=2.9' 'boto3>=1.26'

FROM app AS scale
USER root
COPY --from=scale-wheels /wheels /tmp/wheels
RUN python -m pip install --no-index --find-links /tmp/wheels 'psycopg2-binary>=2.9' 'boto3>=1.26' \
    && rm -rf /tmp/wheels
COPY deploy/tracking.py /usr/local/lib/registry-deploy/tracking.py
USER app

# The default target stays `app`.
FROM app

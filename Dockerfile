# One image for both Compose services: the MLflow tracking server and the trainer that runs
# `python -m registry ...`. The project itself is installed, so the mlflow pinned in pyproject.toml is
# the one in the image. BASE_IMAGE may be any Debian-like image with python3 and pip on PATH.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

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
# EXTRA_PIP: more packages, such as psycopg2-binary for the PostgreSQL backend (compose.postgres.yaml).
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

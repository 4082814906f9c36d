"""The Compose tests' helpers: find the Compose CLI, say why no engine can run a stack, run `invoke` as
a user does, and one throwaway Compose project (default files, free ports) that conftest's
`compose_stack` fixture shares among the tests on the default stack."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.server import free_port

ROOT = Path(__file__).resolve().parent.parent
UP_TIMEOUT = 1500  # `invoke up` may build the image: pip installs mlflow (~2.5 min here)
STEP_TIMEOUT = 300  # any other invoke call


def compose_cli(env: dict[str, str]) -> list[str] | None:
    for cli in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cli[0]) and run([*cli, "version"], env, 60).returncode == 0:
            return cli
    return None


def run(words: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(words, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def skip_reason(env: dict[str, str]) -> str | None:
    """Why the stack cannot run here, or None when a container engine answers."""
    cli = compose_cli(env)
    if cli is None:
        return "no container engine: neither `docker compose` nor `docker-compose` works"
    ping = run([*cli, "ps", "-q"], env, 60)
    if ping.returncode != 0:
        lines = (ping.stderr or ping.stdout).strip().splitlines() or ["no output"]
        return (
            f"no container engine answers (DOCKER_HOST={env.get('DOCKER_HOST') or 'unset'}; "
            f"`{' '.join(cli)} ps`: {lines[-1]}); start one: "
            'eval "$(../shared/container-engine/up.sh)"'
        )
    return None


def invoke(
    env: dict[str, str], *args: str, timeout: float = STEP_TIMEOUT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `invoke ARGS` as a user would; with `check`, fail the test on a non-zero exit."""
    done = run([sys.executable, "-m", "invoke", *args], env, timeout)
    if check:
        assert done.returncode == 0, (
            f"invoke {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


@contextmanager
def throwaway_stack() -> Iterator[dict[str, str]]:
    """The environment of `invoke` calls on a Compose project of its own (compose runner, free ports for
    the UI and `serve`), taken down with its volume at the end; skips when no engine answers. Each test
    calls `invoke up` with its own MODEL_NAME (and settings): Compose recreates what they change."""
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(
        REGISTRY_RUNNER="compose",
        COMPOSE_PROJECT_NAME=f"registrytest{uuid.uuid4().hex[:8]}",
        MLFLOW_PORT=str(free_port()),
        SERVE_PORT=str(free_port()),
    )
    reason = skip_reason(env)
    if reason:
        pytest.skip(reason)
    try:
        yield env
    finally:
        down = invoke(env, "down", "--volumes", check=False)
        assert down.returncode == 0, f"invoke down --volumes failed:\n{down.stdout}\n{down.stderr}"

"""The Compose stack for real: `invoke` with REGISTRY_RUNNER=compose, checked from the host.

Needs a container engine (Docker, or the team's podman: `eval "$(../shared/container-engine/up.sh)"`)
and skips with the reason when none answers. Each run uses a throwaway Compose project and a free
port, and deletes its containers and volume at the end. The first run builds the image (minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.config import load_settings
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
UP_TIMEOUT = 1500  # `invoke up` may build the image: pip installs mlflow (~2.5 min here)
STEP_TIMEOUT = 300  # any other invoke call
MODEL = "iris_compose_test"

pytestmark = pytest.mark.compose


def _compose_cli(env: dict[str, str]) -> list[str] | None:
    for cli in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cli[0]) and _run([*cli, "version"], env, 60).returncode == 0:
            return cli
    return None


def _run(words: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(words, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _skip_reason(env: dict[str, str]) -> str | None:
    """Why the stack cannot run here, or None when a container engine answers."""
    cli = _compose_cli(env)
    if cli is None:
        return "no container engine: neither `docker compose` nor `docker-compose` works"
    ping = _run([*cli, "ps", "-q"], env, 60)
    if ping.returncode != 0:
        lines = (ping.stderr or ping.stdout).strip().splitlines() or ["no output"]
        return (
            f"no container engine answers (DOCKER_HOST={env.get('DOCKER_HOST') or 'unset'}; "
            f"`{' '.join(cli)} ps`: {lines[-1]}); start one: "
            'eval "$(../shared/container-engine/up.sh)"'
        )
    return None


@pytest.fixture(scope="module")
def stack_env() -> Iterator[dict[str, str]]:
    """The environment of every `invoke` call: compose runner, throwaway project, free port."""
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.update(
        REGISTRY_RUNNER="compose",
        COMPOSE_PROJECT_NAME=f"registrytest{uuid.uuid4().hex[:8]}",
        MLFLOW_PORT=str(free_port()),
        MODEL_NAME=MODEL,
    )
    reason = _skip_reason(env)
    if reason:
        pytest.skip(reason)
    try:
        yield env
    finally:
        down = invoke(env, "down", "--volumes", check=False)
        assert down.returncode == 0, f"invoke down --volumes failed:\n{down.stdout}\n{down.stderr}"


def invoke(
    env: dict[str, str], *args: str, timeout: float = STEP_TIMEOUT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `invoke ARGS` as a user would; with `check`, fail the test on a non-zero exit."""
    done = _run([sys.executable, "-m", "invoke", *args], env, timeout)
    if check:
        assert done.returncode == 0, (
            f"invoke {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def test_lifecycle_in_containers(stack_env: dict[str, str], tmp_path: Path) -> None:
    from mlflow import MlflowClient

    up = invoke(stack_env, "up", timeout=UP_TIMEOUT)
    port = stack_env["MLFLOW_PORT"]
    assert f"MLflow UI: http://127.0.0.1:{port}" in up.stdout

    assert "version 1" in invoke(stack_env, "train").stdout
    assert "version 2" in invoke(stack_env, "train", "--c-param", "0.5", "--reason", "a 'quoted' why").stdout
    invoke(stack_env, "stage", "--version", "1", "--stage", "Production", "--alias", "prod")
    invoke(stack_env, "rollback", "--to", "2")

    # The CLI's exit codes come through `exec` and invoke unchanged: 4 is NotFound.
    missing = invoke(stack_env, "stage", "--version", "99", "--stage", "Production", check=False)
    assert missing.returncode == 4, missing.stderr

    client = MlflowClient(tracking_uri=f"http://127.0.0.1:{port}")
    assert client.get_model_version(MODEL, "2").current_stage == "Production"
    assert client.get_model_version(MODEL, "1").current_stage == "Archived"
    assert client.get_model_version_by_alias(MODEL, "prod").version == "2"

    events = json.loads(invoke(stack_env, "history", "--json").stdout)
    changes = [(e["action"], e["version"]) for e in events if e["action"] != "baseline"]
    assert changes == [
        ("train", 1),
        ("train", 2),
        ("stage", 1),
        ("alias", 1),
        ("rollback", 2),
        ("archive", 1),
        ("alias", 2),
    ]
    host_actor = load_settings(stack_env, env_file=ROOT / ".env").actor
    assert host_actor and host_actor != "app"  # the host's user, not the container's
    assert {e["actor"] for e in events} == {host_actor}
    assert any(e["reason"] == "a 'quoted' why" for e in events)

    # The timeline is drawn in the container and lands on the host.
    picture = tmp_path / "timeline.png"
    invoke(stack_env, "timeline", "--file", str(picture))
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000

    # LIFECYCLE=aliases with no alias keys in .env: the container takes that lifecycle's defaults
    # (compose.yaml passes PROD_ALIAS and the like only when set), so champion holds Production.
    aliases_env = {**stack_env, "LIFECYCLE": "aliases", "MODEL_NAME": f"{MODEL}_aliases"}
    invoke(aliases_env, "up", timeout=UP_TIMEOUT)  # recreates the trainer with the new setting
    invoke(aliases_env, "train")
    invoke(aliases_env, "stage", "--version", "1", "--stage", "Production")
    assert client.get_model_version_by_alias(f"{MODEL}_aliases", "champion").version == "1"
    assert client.get_model_version(f"{MODEL}_aliases", "1").current_stage == "None"

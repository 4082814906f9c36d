"""The Compose stack for real: `invoke` with REGISTRY_RUNNER=compose, checked from the host.

Needs a container engine (Docker, or the team's podman: `eval "$(../shared/container-engine/up.sh)"`)
and skips with the reason when none answers. The session's throwaway Compose project (conftest's
`compose_stack`, shared with tests/test_compose_serve.py) runs on free ports and is deleted with its
volume at the end. The first run builds the image (minutes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.config import load_settings
from tests.compose_stack import ROOT, UP_TIMEOUT, invoke

MODEL = "iris_compose_test"

pytestmark = pytest.mark.compose


@pytest.fixture
def stack_env(compose_stack: dict[str, str]) -> dict[str, str]:
    """The session's Compose project (conftest), for MODEL."""
    return {**compose_stack, "MODEL_NAME": MODEL}


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

"""The Compose stack's `serve` service follows the alias: `invoke serve`, then `invoke rollback --to N`.

On the session's throwaway Compose project (conftest's `compose_stack`, shared with tests/test_compose.py);
skips when no container engine answers.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.compose_stack import UP_TIMEOUT, invoke

MODEL = "iris_compose_serve"
SWITCH_SECONDS = 10.0  # events make it well under a second; generous for a loaded machine

pytestmark = pytest.mark.compose


@pytest.fixture
def stack_env(compose_stack: dict[str, str]) -> dict[str, str]:
    """The session's Compose project (conftest), for MODEL."""
    return {**compose_stack, "MODEL_NAME": MODEL}


def get(url: str) -> tuple[int, Any, Any]:
    """Status, headers (looked up in any case) and JSON body of GET `url`."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.headers, json.loads(answer.read().strip() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read().strip() or b"null")


def served_version(url: str, version: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        _, headers, state = get(f"{url}/model")
        if state["version"] == version:
            assert headers["X-Model-Version"] == str(version)
            return dict(state)
        assert time.monotonic() < deadline, f"serve still on {state} after {timeout:g} s"
        time.sleep(0.1)


def test_the_serve_service_follows_a_rollback_made_with_invoke(stack_env: dict[str, str]) -> None:
    invoke(stack_env, "up", timeout=UP_TIMEOUT)
    url = f"http://127.0.0.1:{stack_env['SERVE_PORT']}"

    started = invoke(stack_env, "serve", timeout=UP_TIMEOUT)
    assert f"serve: {url} follows {MODEL}@prod, no version loaded yet" in started.stdout
    assert get(f"{url}/ping")[0] == 503  # healthy only once a model is loaded

    invoke(stack_env, "train")
    invoke(stack_env, "train", "--c-param", "0.5")
    invoke(stack_env, "stage", "--version", "1", "--stage", "Production")
    state = served_version(url, 1, 60)  # the first load imports scikit-learn: seconds
    assert state["events"] == "on" and state["last_error"] is None
    assert get(f"{url}/ping")[0] == 200

    moved = time.monotonic()
    invoke(stack_env, "rollback", "--to", "2")
    state = served_version(url, 2, SWITCH_SECONDS)
    print(f"serve switched {time.monotonic() - moved:.1f} s after `invoke rollback` began")
    body = json.dumps({"inputs": [{"sepal length (cm)": 5.1, "sepal width (cm)": 3.5,
                                   "petal length (cm)": 1.4, "petal width (cm)": 0.2}]}).encode()  # fmt: skip
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.headers["X-Model-Version"] == "2" and json.loads(answer.read()) == {"predictions": [0]}

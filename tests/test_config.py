"""Settings come from the environment over `.env` over documented defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from registry import config
from registry.config import load_settings, redact, with_tracking_uri
from registry.errors import BadInput

ROOT = Path(__file__).resolve().parent.parent


def test_everything_works_without_a_dotenv(tmp_path: Path) -> None:
    settings = load_settings({}, env_file=tmp_path / "missing.env")
    assert (settings.runner, settings.tracking_uri, settings.model_name) == (
        "local",
        "http://127.0.0.1:5000",
        "iris_clf",
    )
    assert settings.prod_alias == "prod" and settings.http_max_retries == 2


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MLFLOW_PORT=5123\nMODEL_NAME=from_file\nPROD_ALIAS=champion\n")
    settings = load_settings({"MODEL_NAME": "from_env"}, env_file=env_file)
    assert settings.tracking_uri == "http://127.0.0.1:5123"
    assert (settings.model_name, settings.prod_alias) == ("from_env", "champion")


@pytest.mark.parametrize(
    "values",
    [
        {"REGISTRY_RUNNER": "kubernetes"},
        {"MLFLOW_PORT": "http"},
        {"MLFLOW_PORT": "70000"},
        {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "-1"},
        {"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"},
        {"MLFLOW_TRACKING_URI": "http://"},
    ],
)
def test_bad_settings_are_bad_input(values: dict[str, str]) -> None:
    with pytest.raises(BadInput):
        load_settings(values, env_file=None)


def test_credentials_in_the_uri_are_split_off_and_never_shown() -> None:
    settings = load_settings(
        {"MLFLOW_TRACKING_URI": "https://bob:hunter2@mlflow.example:8443/"}, env_file=None
    )
    assert settings.tracking_uri == "https://mlflow.example:8443"
    assert (settings.username, settings.password, settings.actor) == ("bob", "hunter2", "bob")
    assert "hunter2" not in repr(settings)
    assert with_tracking_uri(settings, "http://eve:pw@h:1").password == "pw"
    assert (
        redact("GET http://bob:hunter2@h/x failed; hunter2", ("hunter2",)) == "GET http://***@h/x failed; ***"
    )


def test_env_example_mirrors_every_setting_line_for_line() -> None:
    documented = re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE)
    source = (ROOT / "registry" / "config.py").read_text()
    read = re.findall(r'"([A-Z][A-Z_]+)"', source.split("def load_settings", 1)[1].split("def with_", 1)[0])
    assert sorted(documented) == sorted(set(read))
    assert len(config.Settings.__dataclass_fields__) == len(documented)

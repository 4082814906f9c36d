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


def test_env_example_is_generated_from_the_declarations() -> None:
    assert (ROOT / ".env.example").read_text() == config.env_example(), (
        "regenerate it: python -m registry settings --env-example > .env.example"
    )


def test_the_settings_table_is_generated_from_the_declarations() -> None:
    page = (ROOT / "docs" / "settings.md").read_text()
    block = page.split("<!-- settings:start -->\n", 1)[1].split("\n<!-- settings:end -->", 1)[0]
    assert block == config.markdown_table(), (
        "paste `python -m registry settings --markdown` into docs/settings.md"
    )


def test_every_setting_is_declared_once_with_a_key_a_default_and_a_comment() -> None:
    keys = [field.metadata["key"] for field in config.declared()]
    assert len(keys) == len(set(keys))
    assert all(field.metadata["doc"].endswith(".") for field in config.declared())
    defaults = load_settings({}, env_file=None)
    for field in config.declared():
        if field.default not in ("", None):
            assert getattr(defaults, field.name) == field.default, field.name


@pytest.mark.parametrize(
    ("values", "said"),
    [
        ({"LOCK_TIMEOUT": "nan"}, "not a finite number"),
        ({"MLFLOW_HTTP_REQUEST_TIMEOUT": "inf"}, "not a whole number"),
        ({"GATE_TOLERANCE": "-inf"}, "not a finite number"),
        ({"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1" * 30}, "above 20"),
        ({"STAGING_ALIAS": "latest"}, "reserved by MLflow"),
        ({"PROTECTED_ALIASES": "prod,v2"}, "reserved by MLflow"),
        ({"PROD_ALIAS": "prod\x1b[31m"}, "control characters"),
        ({"GATE_DIRECTION": "sideways"}, "unknown"),
        ({"LIFECYCLE": "sometimes"}, "unknown"),
        ({"LIFECYCLE": "aliases", "STAGING_ALIAS": "champion"}, "one alias cannot hold both"),
    ],
)
def test_every_setting_is_validated_before_any_request(values: dict[str, str], said: str) -> None:
    with pytest.raises(BadInput, match=re.escape(said)):
        load_settings(values, env_file=None)


def test_a_dotenv_that_is_not_utf8_is_one_clear_error(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes("MODEL_NAME=caf\xe9\n".encode("latin-1"))
    with pytest.raises(BadInput, match="not UTF-8"):
        load_settings({}, env_file=env_file)


@pytest.mark.parametrize(
    "uri",
    ["bob:s3cr%40t@host:5000", "ftp://bob:s3cr%40t@host/", "http://bob:s3cr%40t@host:port"],
)
def test_credentials_in_any_spelling_of_a_bad_uri_are_not_shown(uri: str) -> None:
    with pytest.raises(BadInput) as caught:
        load_settings({"MLFLOW_TRACKING_URI": uri}, env_file=None)
    assert "s3cr" not in str(caught.value)


def test_percent_encoded_credentials_are_decoded_before_they_are_sent() -> None:
    settings = load_settings({"MLFLOW_TRACKING_URI": "http://bob%40corp:p%40ss%3Aw@h:5000"}, env_file=None)
    assert (settings.username, settings.password) == ("bob@corp", "p@ss:w")
    assert redact("sent p%40ss%3Aw and p@ss:w", ("p@ss:w",)) == "sent *** and ***"


def test_the_aliases_lifecycle_has_its_own_alias_defaults_unless_they_are_set() -> None:
    plain = load_settings({"LIFECYCLE": "aliases"}, env_file=None)
    assert (plain.prod_alias, plain.staging_alias, plain.protected_aliases) == (
        "champion",
        "challenger",
        ("champion",),
    )
    chosen = load_settings({"LIFECYCLE": "Aliases", "PROD_ALIAS": "live"}, env_file=None)
    assert (chosen.lifecycle, chosen.prod_alias, chosen.staging_alias) == ("aliases", "live", "challenger")
    assert load_settings({"PROD_ALIAS": "live"}, env_file=None, lifecycle="aliases").prod_alias == "live"
    assert load_settings({}, env_file=None).prod_alias == "prod"

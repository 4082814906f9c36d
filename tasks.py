"""Invoke tasks: each builds one `python -m registry ...` command line and runs it, on this machine
(REGISTRY_RUNNER=local) or inside the Compose stack's trainer container (REGISTRY_RUNNER=compose).

Only `registry.config` is imported (standard library + python-dotenv), so `invoke --list` stays fast.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import urllib.parse
import webbrowser
from typing import Any

from invoke import Context, Exit, task

from registry.config import Settings, load_settings, local_server_address
from registry.errors import RegistryError

PYTHON = shlex.quote(sys.executable)
MODEL_HELP = "registered model (default MODEL_NAME from .env, iris_clf)"
REASON_HELP = "why: kept in the ledger"


def settings() -> Settings:
    """The settings from the environment and .env, or a clean exit naming what is wrong."""
    try:
        return load_settings()
    except RegistryError as exc:
        raise Exit(f"error: {exc}", code=exc.exit_code) from None


def arguments(*args: Any, **options: Any) -> list[str]:
    """Command-line words: positional `args`, then `--flag value` for each option that is set.

    True adds a bare flag; None and False leave the option out.
    """
    words = [str(arg) for arg in args]
    for name, value in options.items():
        if value is None or value is False:
            continue
        words.append("--" + name.replace("_", "-"))
        if value is not True:
            words.append(str(value))
    return words


def registry_command(config: Settings, words: list[str]) -> str:
    """The one command line that runs `python -m registry WORDS` with the configured runner."""
    quoted = " ".join(shlex.quote(word) for word in words)
    if config.runner == "compose":
        actor = shlex.quote(f"REGISTRY_ACTOR={config.actor}")
        return f"docker compose exec -T -e {actor} trainer python -m registry {quoted}"
    return f"{PYTHON} -m registry {quoted}"


def run_registry(c: Context, words: list[str], hide: bool = False) -> Any:
    """Run the CLI (starting the local server first when the runner needs it); exit as it did."""
    config = settings()
    if config.runner == "local" and local_server_address(config) is not None:
        _checked(c.run(registry_command(config, ["up", "--quiet"]), warn=True))
    return _checked(c.run(registry_command(config, words), warn=True, hide=hide))


def _checked(result: Any) -> Any:
    if result is not None and result.exited != 0:
        raise Exit(code=result.exited)
    return result


@task(help={"quiet": "print nothing when the server already runs"})
def up(c, quiet=False):
    """Start the MLflow server (local: embedded SQLite server; compose: the stack)."""
    c.run(registry_command(settings(), arguments("up", quiet=quiet)))


@task
def down(c):
    """Stop the local MLflow server that `up` started."""
    _checked(c.run(registry_command(settings(), ["down"]), warn=True))


@task(
    help={
        "c_param": "LogisticRegression's C, inverse regularisation strength (1.0)",
        "max_iter": "solver iterations (200)",
        "seed": "seed of the split and the solver (42)",
        "reason": REASON_HELP,
        "model": MODEL_HELP,
    }
)
def train(c, c_param=None, max_iter=None, seed=None, reason=None, model=None):
    """Train the Iris classifier and register a new version."""
    run_registry(
        c, arguments("train", c_param=c_param, max_iter=max_iter, seed=seed, reason=reason, model=model)
    )


@task(
    help={
        "json": "print JSON instead of a table",
        "stage": "only versions in this stage",
        "alias": "only the version this alias points at",
        "limit": "at most this many versions",
        "model": MODEL_HELP,
    }
)
def versions(c, json=False, stage=None, alias=None, limit=None, model=None):
    """List versions, newest first, with stage, aliases and accuracy."""
    run_registry(c, arguments("versions", json=json, stage=stage, alias=alias, limit=limit, model=model))


@task(
    help={
        "version": "version number to move",
        "stage": "None, Staging, Production or Archived (any case)",
        "alias": "also point this alias at the version",
        "no_archive": "keep the versions already in Staging (refused for Production)",
        "reason": REASON_HELP,
        "model": MODEL_HELP,
    }
)
def stage(c, version, stage, alias=None, no_archive=False, reason=None, model=None):
    """Move a version to a stage, archiving the version it replaces."""
    words = arguments(
        "stage", version=version, stage=stage, alias=alias, no_archive=no_archive, reason=reason, model=model
    )
    run_registry(c, words)


@task(
    help={
        "name": "alias name, such as prod or champion",
        "version": "version the alias should point at",
        "delete": "remove the alias instead",
        "reason": REASON_HELP,
        "model": MODEL_HELP,
    }
)
def alias(c, name, version=None, delete=False, reason=None, model=None):
    """Point an alias at a version, or delete it."""
    run_registry(c, arguments("alias", name=name, version=version, delete=delete, reason=reason, model=model))


@task(
    help={
        "to": "version to make Production again (default: the previous Production version)",
        "alias": "production alias to move along (default PROD_ALIAS, prod)",
        "reason": REASON_HELP,
        "model": MODEL_HELP,
    }
)
def rollback(c, to=None, alias=None, reason=None, model=None):
    """Make an earlier version Production again, like `cd -` without --to."""
    run_registry(c, arguments("rollback", to=to, alias=alias, reason=reason, model=model))


@task(help={"json": "print JSON instead of a table", "model": MODEL_HELP})
def history(c, json=False, model=None):
    """Show the ledger: every change made through this tool, oldest first."""
    run_registry(c, arguments("history", json=json, model=model))


@task(help={"file": "PNG file to write on this machine (default timeline.png)", "model": MODEL_HELP})
def timeline(c, file="timeline.png", model=None):
    """Draw which version held Production, Staging and each alias over time into a PNG file."""
    config = settings()
    if config.runner != "compose":
        run_registry(c, arguments("history", plot=file, model=model))
        return
    # The CLI runs in the trainer container: it writes the PNG to its stdout (`--plot -`) and the host's
    # shell saves it, so no container path, user or `compose cp` is involved (docker-compose v1 has no cp).
    words = arguments("history", plot="-", model=model)
    partial = f"{file}.part"
    command = f"{registry_command(config, words)} > {shlex.quote(partial)}"
    result = c.run(command, warn=True)
    if result is not None and result.exited != 0:
        if os.path.exists(partial):
            os.remove(partial)
        raise Exit(code=result.exited)
    os.replace(partial, file)
    print(f"Wrote {file}")


@task(
    help={
        "model": MODEL_HELP,
        "no_browser": "only print the URL, even where a browser could be opened",
    }
)
def ui(c, model=None, no_browser=False):
    """Print the model's page in the MLflow UI, and open it in a browser when there is a display."""
    config = settings()
    url = f"{_ui_url(config)}/#/models/{urllib.parse.quote(model or config.model_name, safe='')}"
    print(url)
    if not no_browser and _has_display():
        webbrowser.open(url)


@task(
    help={
        "uri": "models:/NAME/1, models:/NAME/Production or models:/NAME@ALIAS",
        "version": "load this version",
        "stage": "load the version in this stage",
        "alias": "load the version this alias points at",
        "model": MODEL_HELP,
    }
)
def predict(c, uri=None, version=None, stage=None, alias=None, model=None):
    """Load a model by URI and predict on its stored input example."""
    run_registry(c, arguments("predict", uri=uri, version=version, stage=stage, alias=alias, model=model))


@task
def demo(c):
    """The whole lifecycle: train twice, stage, promote, roll back, list, predict."""
    config = settings()
    reason = "invoke demo"
    prod = config.prod_alias
    first = _trained_version(run_registry(c, arguments("train", reason=reason)))
    second = _trained_version(run_registry(c, arguments("train", c_param=0.5, reason=reason)))
    run_registry(c, arguments("stage", version=first, stage="Staging", reason=reason))
    run_registry(c, arguments("stage", version=first, stage="Production", alias=prod, reason=reason))
    run_registry(c, arguments("stage", version=second, stage="Production", alias=prod, reason=reason))
    run_registry(c, arguments("rollback", reason=reason))
    run_registry(c, ["versions"])
    run_registry(c, ["history"])
    run_registry(c, arguments("predict", uri=f"models:/{config.model_name}@{config.prod_alias}"))
    print(f"\nMLflow UI: {_ui_url(config)}/#/models/{config.model_name}")


@task(help={"args": 'extra pytest arguments, such as "-k rollback"'})
def test(c, args=""):
    """Run the test suite."""
    c.run(f"{PYTHON} -m pytest {args}".strip())


def _trained_version(result: Any) -> int:
    found = re.search(r"version (\d+)", result.stdout)
    if not found:
        raise Exit("error: could not read the new version number from `train`")
    return int(found.group(1))


def _has_display() -> bool:
    """True where `webbrowser` can show a page: macOS, Windows, or a Unix desktop session."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _ui_url(config: Settings) -> str:
    if config.runner == "compose":
        return f"http://127.0.0.1:{config.mlflow_port}"
    return config.tracking_uri

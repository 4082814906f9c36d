"""Invoke tasks: each builds one `python -m registry ...` command line and runs it, on this machine
(REGISTRY_RUNNER=local) or inside the Compose stack's trainer container (REGISTRY_RUNNER=compose).

Only `registry.config` is imported (standard library + python-dotenv), so `invoke --list` stays fast.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
import urllib.parse
import urllib.request
import webbrowser
from typing import Any, NamedTuple

from invoke import Context, Exit, task

from registry.config import RegistryError, Settings, Unreachable, load_settings, local_server_address

PYTHON = shlex.quote(sys.executable)
MODEL_HELP = "registered model (default MODEL_NAME from .env, iris_clf)"
REASON_HELP = "why: kept in the ledger"
FORCE_HELP = "override failed gates or alias protection (needs --reason, kept in the ledger)"
DRY_RUN_HELP = "print the plan and the gates, change nothing (exits 5 when a gate would refuse)"
# The Compose CLIs tried, in this order: the v2 plugin, then the v1 script (Debian's docker-compose).
COMPOSE_CLIS = ("docker compose", "docker-compose")
ENGINE_HINT = 'start Docker (here without Docker: eval "$(../shared/container-engine/up.sh)")'
# What to do when the engine answers but cannot build or start containers ("write child: broken pipe").
ENGINE_RESTART = 'restart it, or here without Docker: eval "$(../shared/container-engine/up.sh)"'
# Seconds `invoke up` waits for the mlflow service to answer /health after `up -d`.
HEALTH_TIMEOUT = 180.0
# Seconds `invoke demo --serve` waits for `serve` to follow a promotion or a rollback.
DEMO_SWITCH_TIMEOUT = 60.0
# One Iris flower, the request `invoke demo --serve` sends.
DEMO_REQUEST = {
    "dataframe_split": {
        "columns": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
        "data": [[6.7, 3.0, 5.2, 2.3]],
    }
}
# What `compose()` found, so that one invocation (such as `demo`) asks the engine only once.
_ready: dict[str, str] = {}


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


def registry_command(config: Settings, words: list[str], compose_cli: str = "docker compose") -> str:
    """The one command line that runs `python -m registry WORDS` with the configured runner.

    With compose it runs in the trainer container, as the host's actor; `compose_cli` is what
    `compose()` found.
    """
    quoted = _quoted(words)
    if config.runner == "compose":
        actor = shlex.quote(f"REGISTRY_ACTOR={config.actor}")
        return f"{compose_cli} exec -T -e {actor} trainer python -m registry {quoted}"
    return f"{PYTHON} -m registry {quoted}"


def run_registry(c: Context, words: list[str], hide: bool = False) -> Any:
    """Run the CLI (starting the local server first when the runner needs it); exit as it did."""
    config = settings()
    if config.runner == "compose":
        return _checked(c.run(registry_command(config, words, compose(c, stack=True)), warn=True, hide=hide))
    if local_server_address(config) is not None:
        _checked(c.run(registry_command(config, ["up", "--quiet"]), warn=True))
    return _checked(c.run(registry_command(config, words), warn=True, hide=hide))


def compose(c: Context, stack: bool = False) -> str:
    """`docker compose` or `docker-compose`, whichever works, once the engine answers; else a clean exit.

    With `stack`, the trainer container must be running too. Checked once per invocation.
    """
    key = "stack" if stack else "engine"
    if key in _ready:
        return _ready[key]
    cli = next((cli for cli in COMPOSE_CLIS if c.run(f"{cli} version", hide=True, warn=True).ok), None)
    if cli is None:
        raise Exit(
            "error: neither `docker compose` nor `docker-compose` works; install Docker Compose, "
            "or set REGISTRY_RUNNER=local",
            code=Unreachable.exit_code,
        )
    answer = c.run(f"{cli} ps --services --filter status=running", hide=True, warn=True)
    if not answer.ok:
        lines = (answer.stderr or answer.stdout).strip().splitlines()
        raise Exit(
            f"error: the container engine does not answer ({cli} ps: {lines[-1] if lines else 'failed'}); "
            f"{ENGINE_HINT}",
            code=Unreachable.exit_code,
        )
    if stack and "trainer" not in answer.stdout.split():
        raise Exit(
            "error: the Compose stack is not running (no trainer container); start it with `invoke up`",
            code=Unreachable.exit_code,
        )
    _ready["engine"] = cli
    _ready[key] = cli
    return cli


def _checked(result: Any) -> Any:
    if result is not None and result.exited != 0:
        raise Exit(code=result.exited)
    return result


@task(help={"quiet": "print nothing when the server already runs (compose: build output only on failure)"})
def up(c, quiet=False):
    """Start the MLflow server (local: embedded SQLite server; compose: build, start, wait until healthy).

    compose: the build's output is shown only when the build fails or makes a new image; when `up`
    fails, the engine's own error lines come first, then one line saying what to check (exit 3).
    """
    config = settings()
    if config.runner != "compose":
        c.run(registry_command(config, arguments("up", quiet=quiet)))
        return
    cli = compose(c)
    configuration = _configuration(c, cli)
    _build(c, cli, quiet, _image_names(configuration))
    command = f"{cli} up -d{_scale_options(config, _service_names(configuration))}"
    started = c.run(command, warn=True, hide=True)
    if not started.ok:
        _show(started)
        raise Exit(
            f"error: `{command}` failed (exit {started.exited}): check the container engine "
            f"({ENGINE_RESTART}) and whether port {config.mlflow_port} (MLFLOW_PORT) is taken",
            code=Unreachable.exit_code,
        )
    url = _ui_url(config)
    _wait_healthy(url, HEALTH_TIMEOUT)
    print(f"MLflow UI: {url}")


def _build(c: Context, cli: str, quiet: bool, images: list[str]) -> None:
    """`cli build`, output hidden unless it fails or makes a new image; a clean exit 3 when it fails.

    A new image shows as a changed image id (`docker image inspect` of `images` before and after). When
    an image is missing beforehand (a first build, minutes long) or cannot be inspected (`docker-compose`
    without the docker CLI), the build prints as it goes, unless `quiet`.
    """
    before = _image_ids(c, images)
    live = before is None and not quiet
    built = c.run(f"{cli} build", warn=True, hide=None if live else True)
    if not built.ok:
        if not live:
            _show(built)
        raise Exit(
            f"error: `{cli} build` failed (exit {built.exited}), see the lines above; if they name no "
            f"step of the Dockerfile, check the container engine ({ENGINE_RESTART})",
            code=Unreachable.exit_code,
        )
    if not live and not quiet:
        after = _image_ids(c, images)
        if after is None or after != before:
            _show(built)


def _configuration(c: Context, cli: str) -> str:
    """The Compose configuration as `cli config` prints it (COMPOSE_FILE and .env applied); "" on failure."""
    answer = c.run(f"{cli} config", warn=True, hide=True)
    return answer.stdout if answer.ok else ""


def _image_names(configuration: str) -> list[str]:
    """The `image:` of every service in the Compose configuration."""
    found = re.findall(r"^\s+image:\s*['\"]?([^'\"\s]+)", configuration, flags=re.MULTILINE)
    return list(dict.fromkeys(found))


def _service_names(configuration: str) -> set[str]:
    """The services of the Compose configuration: the keys under its top-level `services:`."""
    names, inside = set(), False
    for line in configuration.splitlines():
        if line[:1].strip():  # a top-level key
            inside = line.rstrip() == "services:"
        elif inside and (found := re.fullmatch(r"  ([\w.-]+):\s*", line)):
            names.add(found.group(1))
    return names


def _scale_options(config: Settings, services: set[str]) -> str:
    """`up -d`'s options for the scale-out stack (compose.scale.yaml), when its services are configured.

    MLFLOW_SERVERS tracking servers; the bundled PostgreSQL and object store left out (0) when
    BACKEND_STORE_URI and ARTIFACTS_DESTINATION name your own. `--scale` works alike in Compose v1 and v2,
    where `deploy.replicas` and `scale:` do not.
    """
    if "tracking" not in services:
        return ""
    scales = {"tracking": config.mlflow_servers}
    if config.backend_store_uri and "postgres" in services:
        scales["postgres"] = 0
    if config.artifacts_destination and "objectstore" in services:
        scales["objectstore"] = 0
    return "".join(f" --scale {shlex.quote(f'{name}={count}')}" for name, count in scales.items())


def _image_ids(c: Context, images: list[str]) -> str | None:
    """The ids of `images`, one a line; None when there are none or one is missing."""
    if not images:
        return None
    answer = c.run(f"docker image inspect --format {_quoted(['{{.Id}}', *images])}", warn=True, hide=True)
    return answer.stdout if answer.ok else None


def _show(result: Any) -> None:
    """Print what a hidden command wrote: its output, then its errors."""
    for text, stream in ((result.stdout, sys.stdout), (result.stderr, sys.stderr)):
        if text:
            print(text, end="" if text.endswith("\n") else "\n", file=stream, flush=True)


@task(help={"volumes": "compose: also delete the registry data (the stack's named volume)"})
def down(c, volumes=False):
    """Stop the MLflow server (local: the one `up` started; compose: the whole stack)."""
    config = settings()
    if config.runner == "compose":
        _ready.pop("stack", None)
        _checked(c.run(f"{compose(c)} down" + (" --volumes" if volumes else ""), warn=True))
        return
    if volumes:
        raise Exit(
            f"error: --volumes is for REGISTRY_RUNNER=compose; the local server's data is in "
            f"{config.registry_home}/ (delete it yourself after `invoke down`)",
            code=2,
        )
    _checked(c.run(registry_command(config, ["down"]), warn=True))


@task(
    help={
        "service": "compose: only this service, mlflow or trainer (default: both)",
        "follow": "keep printing new lines until Ctrl-C",
        "tail": "only the last N lines (default: all)",
    }
)
def logs(c, service=None, follow=False, tail=None):
    """Show the server logs (local: REGISTRY_HOME/server.log; compose: the stack's)."""
    config = settings()
    if config.runner == "compose":
        words = [*arguments("logs", follow=follow, tail=tail), *([service] if service else [])]
        _checked(c.run(f"{compose(c)} {_quoted(words)}", warn=True))
        return
    path = config.registry_home / "server.log"
    if not path.is_file():
        raise Exit(f"error: no server log at {path}: the local server has not been started here", code=4)
    words = ["tail", "-n", tail or "+1", *(["-f"] if follow else []), str(path)]
    _checked(c.run(_quoted(words), warn=True))


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
        "force": FORCE_HELP,
        "dry_run": DRY_RUN_HELP,
        "model": MODEL_HELP,
    }
)
def stage(
    c, version, stage, alias=None, no_archive=False, reason=None, force=False, dry_run=False, model=None
):
    """Move a version to a stage, archiving the version it replaces (gated for Production)."""
    words = arguments(
        "stage",
        version=version,
        stage=stage,
        alias=alias,
        no_archive=no_archive,
        reason=reason,
        force=force,
        dry_run=dry_run,
        model=model,
    )
    run_registry(c, words)


@task(
    help={
        "name": "alias name, such as prod or champion",
        "version": "version the alias should point at",
        "delete": "remove the alias instead",
        "reason": REASON_HELP,
        "force": FORCE_HELP,
        "dry_run": DRY_RUN_HELP,
        "model": MODEL_HELP,
    }
)
def alias(c, name, version=None, delete=False, reason=None, force=False, dry_run=False, model=None):
    """Point an alias at a version, or delete it (protected aliases need --force)."""
    words = arguments(
        "alias",
        name=name,
        version=version,
        delete=delete,
        reason=reason,
        force=force,
        dry_run=dry_run,
        model=model,
    )
    run_registry(c, words)


@task(
    help={
        "to": "version to make Production again (default: the previous Production version)",
        "alias": "also point this alias at it (PROD_ALIAS, prod, always follows Production)",
        "reason": REASON_HELP,
        "force": FORCE_HELP,
        "dry_run": DRY_RUN_HELP,
        "model": MODEL_HELP,
    }
)
def rollback(c, to=None, alias=None, reason=None, force=False, dry_run=False, model=None):
    """Make an earlier version Production again, like `cd -` without --to (gated)."""
    run_registry(
        c, arguments("rollback", to=to, alias=alias, reason=reason, force=force, dry_run=dry_run, model=model)
    )


@task(
    help={
        "json": "print JSON instead of a table",
        "at": "stage holders and aliases at this UTC time, such as 2026-11-30T12:00:00Z",
        "version": "only the life of this version",
        "limit": "only the newest N events (table default 100; 0: all)",
        "model": MODEL_HELP,
    }
)
def history(c, json=False, at=None, version=None, limit=None, model=None):
    """Show the ledger: every change made through this tool, oldest first, or the state at a time."""
    run_registry(c, arguments("history", json=json, at=at, version=version, limit=limit, model=model))


@task(
    help={
        "older_than": "only tickets last used more than this many days ago (30)",
        "dry_run": "list what would be deleted, delete nothing",
        "model": MODEL_HELP,
    }
)
def prune_locks(c, older_than=None, dry_run=False, model=None):
    """Delete old released lock tickets of a model (an admin's job: needs delete permission)."""
    run_registry(c, arguments("prune-locks", older_than=older_than, dry_run=dry_run, model=model))


@task(
    help={
        "fix": "repair what is safe; each repair is kept in the ledger",
        "json": "print JSON instead of a table",
        "model": MODEL_HELP,
    }
)
def doctor(c, fix=False, json=False, model=None):
    """Find drift between the registry, the tool's rules and the ledger (exit 6 when found)."""
    run_registry(c, arguments("doctor", fix=fix, json=json, model=model))


@task(
    help={
        "to": "the lifecycle to switch the model to: aliases or stages",
        "dry_run": "print the changes, change nothing",
        "reason": REASON_HELP,
        "model": MODEL_HELP,
    }
)
def migrate(c, to, dry_run=False, reason=None, model=None):
    """Switch a model between stages and aliases (champion, challenger), keeping every role."""
    run_registry(c, arguments("migrate", to=to, dry_run=dry_run, reason=reason, model=model))


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
    command = f"{registry_command(config, words, compose(c, stack=True))} > {shlex.quote(partial)}"
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


@task(
    help={
        "alias": "alias to follow (default PROD_ALIAS, prod)",
        "host": "local: address to listen on (127.0.0.1)",
        "port": "local: port (default SERVE_PORT, 8080; compose: SERVE_PORT in .env)",
        "workers": "local: server processes (1)",
        "model": MODEL_HELP,
    }
)
def serve(c, alias=None, host=None, port=None, workers=None, model=None):
    """Serve the version an alias points at and follow the alias (compose: the serve service)."""
    config = settings()
    if config.runner != "compose":
        run_registry(c, arguments("serve", alias=alias, host=host, port=port, workers=workers, model=model))
        return
    if host or port or workers:
        raise Exit(
            "error: with REGISTRY_RUNNER=compose the serve service listens on 127.0.0.1:SERVE_PORT with one "
            "worker: set SERVE_PORT in .env instead of --host, --port or --workers",
            code=2,
        )
    _start_compose_serve(c, config, model, alias)
    url = f"http://127.0.0.1:{config.serve_port}"
    state = _serve_state(url, HEALTH_TIMEOUT)
    name, followed = model or config.model_name, alias or config.prod_alias
    if state.get("version") is None:
        print(f"serve: {url} follows {name}@{followed}, no version loaded yet: {state.get('last_error')}")
    else:
        print(f"serve: {url} follows {name}@{followed}, serving version {state['version']}")
    print(f"  curl -si {url}/invocations -H 'Content-Type: application/json' -d '{{\"inputs\": [...]}}'")
    print(f"  curl -s {url}/model        # which version answers; `invoke logs --service serve`")


def _start_compose_serve(c: Context, config: Settings, model: str | None, alias: str | None) -> None:
    """`up -d` the serve service (for `model@alias` when given); a clean exit when it cannot start."""
    cli = compose(c)
    chosen = {"MODEL_NAME": model, "PROD_ALIAS": alias}  # for this service only: it is (re)created with them
    started = c.run(
        f"{cli} --profile serve up -d serve", warn=True, hide=True, env={k: v for k, v in chosen.items() if v}
    )
    if not started.ok:
        _show(started)
        raise Exit(
            f"error: `{cli} --profile serve up -d serve` failed (exit {started.exited}); is port "
            f"{config.serve_port} (SERVE_PORT) taken?",
            code=Unreachable.exit_code,
        )


def _serve_state(
    url: str,
    timeout: float,
    version: int | None = None,
    log: str = "`invoke logs --service serve`",
    pid: int = 0,
) -> dict[str, Any]:
    """GET `url`/model once it answers (and serves `version`, when given); a clean exit after `timeout`
    seconds, or as soon as process `pid` (when given) is gone, that says what it last saw."""
    import json

    deadline = time.monotonic() + timeout
    state: dict[str, Any] = {}
    while True:
        try:
            with urllib.request.urlopen(f"{url}/model", timeout=2) as answer:
                state = dict(json.loads(answer.read()))
            if version is None or state.get("version") == version:
                return state
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline or (pid and not _running(pid)):
            seen = f"version {state.get('version')}: {state.get('last_error')}" if state else "no answer"
            wanted = f"version {version}" if version is not None else "an answer"
            raise Exit(
                f"error: serve at {url} gave no {wanted} ({seen}); see {log}", code=Unreachable.exit_code
            )
        time.sleep(0.5)


@task(
    positional=["action"],
    help={
        "action": "add, list, remove or test",
        "url": "add: where to POST each event, such as https://host/path",
        "secret": "add: HMAC secret of the signatures (default: a new random one, printed once)",
        "name": "the webhook's name (add: default registry-events)",
        "events": "add: comma-separated MLflow events (default: all six model registry events)",
        "event": "test: which event's example to deliver (default: the webhook's first)",
        "json": "list: print JSON instead of a table",
    },
)
def hooks(c, action, url=None, secret=None, name=None, events=None, event=None, json=False):
    """Webhooks: every change reaches a subscribed URL as a signed POST (add, list, remove, test)."""
    words = arguments(
        "hooks", action, url=url, secret=secret, name=name, events=events, event=event, json=json
    )
    run_registry(c, words)


@task(
    help={
        "to_model": "registered model to copy into, such as prod.iris_clf",
        "version": "the version of --model to copy",
        "alias": "copy the version of --model this alias points at",
        "to_tracking_uri": "the target's MLflow server (default: the same server)",
        "to_alias": "point this alias of the target model at the copy, such as champion",
        "reason": REASON_HELP,
        "force": FORCE_HELP,
        "dry_run": DRY_RUN_HELP,
        "model": MODEL_HELP,
    },
    auto_shortflags=False,  # too many flags start with "t" and "a" to share one letter each
)
def promote(
    c,
    to_model,
    version=None,
    alias=None,
    to_tracking_uri=None,
    to_alias=None,
    reason=None,
    force=False,
    dry_run=False,
    model=None,
):
    """Copy a version into another registered model, on this server or another one (gated, at most once)."""
    words = arguments(
        "promote",
        to_model=to_model,
        version=version,
        alias=alias,
        to_tracking_uri=to_tracking_uri,
        to_alias=to_alias,
        reason=reason,
        force=force,
        dry_run=dry_run,
        model=model,
    )
    run_registry(c, words)


@task(
    help={
        "serve": "also run `serve` on PROD_ALIAS and show it switch on the promotion and the rollback "
        "(local: in the background until the demo ends; compose: the serve service, left running)",
    }
)
def demo(c, serve=False):
    """The whole lifecycle: train twice, stage, promote, roll back, list, predict."""
    config = settings()
    prod = config.prod_alias or None
    if serve and prod is None:
        raise Exit("error: --serve follows PROD_ALIAS, which is empty; set it (such as prod) in .env", code=2)
    reason = "invoke demo"
    first = _trained_version(run_registry(c, arguments("train", reason=reason)))
    second = _trained_version(run_registry(c, arguments("train", c_param=0.5, reason=reason)))
    run_registry(c, arguments("stage", version=first, stage="Staging", reason=reason))
    run_registry(c, arguments("stage", version=first, stage="Production", alias=prod, reason=reason))
    served = _demo_serve(c, config) if serve else None
    try:
        _show_serving(served, first, HEALTH_TIMEOUT, f"{prod} is on version {first}")
        run_registry(c, arguments("stage", version=second, stage="Production", alias=prod, reason=reason))
        _show_serving(served, second, DEMO_SWITCH_TIMEOUT, f"version {second} promoted")
        run_registry(c, arguments("rollback", reason=reason))
        _show_serving(served, first, DEMO_SWITCH_TIMEOUT, "rolled back")
    finally:
        if served and served.pid:
            c.run(f"kill {served.pid}", hide=True, warn=True)
    run_registry(c, ["versions"])
    run_registry(c, ["history"])
    run_registry(c, arguments("predict", uri=f"models:/{config.model_name}@{config.prod_alias}"))
    print(f"\nMLflow UI: {_ui_url(config)}/#/models/{config.model_name}")


class _DemoServe(NamedTuple):
    url: str
    log: str  # where to look when it fails
    pid: int  # the local process, stopped when the demo ends; 0: compose's service, left running


def _demo_serve(c: Context, config: Settings) -> _DemoServe:
    """Start `serve` for the demo, on this machine in the background or as compose's serve service."""
    import json

    url = f"http://127.0.0.1:{config.serve_port}"
    if config.runner == "compose":
        _start_compose_serve(c, config, None, None)
        print(f"serve: {url} (the serve service; `invoke down` stops it)")
        served = _DemoServe(url, "`invoke logs --service serve`", 0)
    else:
        log = config.registry_home / "serve.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = f"{registry_command(config, ['serve'])} >> {shlex.quote(str(log))} 2>&1 & echo $!"
        pid = int(c.run(command, hide=True).stdout.split()[-1])
        print(f"serve: {url} in the background (pid {pid}, log {log}); stopped when the demo ends")
        served = _DemoServe(url, str(log), pid)
    body = shlex.quote(json.dumps(DEMO_REQUEST))
    print(f"  curl -si {url}/invocations -H 'Content-Type: application/json' -d {body}")
    return served


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _show_serving(served: _DemoServe | None, version: int, timeout: float, after: str) -> None:
    """Wait until `serve` answers with `version`, then show one prediction and its header."""
    import json

    if served is None:
        return
    url = served.url
    _serve_state(url, timeout, version, served.log, served.pid)
    request = urllib.request.Request(
        f"{url}/invocations", json.dumps(DEMO_REQUEST).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            header, body = answer.headers["X-Model-Version"], answer.read().decode().strip()
    except OSError as exc:
        raise Exit(f"error: serve at {url} did not predict: {exc}; see {served.log}", code=3) from None
    print(f"serve: X-Model-Version: {header}  {body}  ({after})")


@task(help={"args": 'extra pytest arguments, such as "-k rollback"'})
def test(c, args=""):
    """Run the test suite."""
    c.run(f"{PYTHON} -m pytest {args}".strip())


@task(
    help={
        "quick": "smaller sizes and fewer repeats (a few minutes)",
        "sections": "only these, comma-separated: startup,versions,mutations,history,train,workers",
        "out": "also write the tables to this Markdown file",
    }
)
def bench(c, quick=False, sections=None, out=None):
    """Benchmark the commands against a local MLflow server (bench/run.py) and print the tables."""
    from pathlib import Path

    script = Path(__file__).resolve().parent / "bench" / "run.py"
    c.run(f"{PYTHON} {_quoted(arguments(script, quick=quick, sections=sections, out=out))}")


def _quoted(words: list[str]) -> str:
    return " ".join(shlex.quote(str(word)) for word in words)


def _wait_healthy(url: str, timeout: float) -> None:
    """Poll `url`/health until it answers 200; a clean exit after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise Exit(
                f"error: MLflow at {url} is not healthy after {timeout:.0f} s; see `invoke logs`",
                code=Unreachable.exit_code,
            )
        time.sleep(1)


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

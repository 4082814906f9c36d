"""With REGISTRY_RUNNER=compose, tasks run the CLI in the trainer container: exact command lines."""

from __future__ import annotations

import getpass
import re
import shlex

import pytest
from invoke import Exit, MockContext, Result

import tasks
from tests.conftest import commands

RUNNING = Result(stdout="mlflow\ntrainer\n")
ENGINE_DOWN = Result(stderr="Traceback ...\nCannot connect to the Docker daemon\n", exited=1)
IMAGE = "mlflow-registry-lifecycle:local"
# What `config` prints (abridged): both services name the one image.
CONFIG = Result(stdout=f"services:\n  mlflow:\n    build:\n      context: .\n    image: {IMAGE}\n  trainer:\n"
                       f"    image: {IMAGE}\n    pull_policy: never\n")  # fmt: skip
INSPECT = f"docker image inspect --format '{{{{.Id}}}}' {IMAGE}"
OLD_ID, NEW_ID = Result(stdout="sha256:0ld\n"), Result(stdout="sha256:new\n")
NO_IMAGE = Result(stderr=f"Error response from daemon: No such image: {IMAGE}\n", exited=1)
BUILD_LOG = Result(
    stdout="STEP 1/12: FROM python:3.11-slim\n--> Using cache 1a2b\n",
    stderr="DEPRECATED: The legacy builder is deprecated and will be removed in a future release.\n",
)
STARTED = Result(stderr="Container registry-mlflow-1  Started\n")


def mock(
    docker_compose: bool = True,
    ps: Result = RUNNING,
    ids: list[Result] | None = None,
    build: Result = BUILD_LOG,
    started: Result = STARTED,
) -> MockContext:
    """A context where `docker compose` (or only `docker-compose`) works and `ps` answers `ps`.

    `ids`: what `docker image inspect` answers, call after call (default: the same id each time);
    `build` and `started`: what `build` and `up -d` answer.
    """
    return MockContext(
        run={
            "docker compose version": Result(exited=0 if docker_compose else 1),
            "docker-compose version": Result(),
            re.compile(r".* ps --services --filter status=running$"): ps,
            re.compile(r".* config$"): CONFIG,
            INSPECT: ids or [OLD_ID],
            re.compile(r".* build$"): build,
            re.compile(r".* up -d$"): started,
            re.compile(r"^(?!.* ps --services).*$"): Result(stdout="Registered iris_clf version 3\n"),
        }
    )


@pytest.fixture(autouse=True)
def compose_runner(task_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_RUNNER", "compose")
    monkeypatch.setenv("REGISTRY_ACTOR", "ada lovelace")
    monkeypatch.setenv("MLFLOW_PORT", "5123")
    monkeypatch.setattr(tasks, "_ready", {})


EXEC = "docker compose exec -T -e 'REGISTRY_ACTOR=ada lovelace' trainer python -m registry"
PROBES = ["docker compose version", "docker compose ps --services --filter status=running"]


def test_train_runs_in_the_trainer_as_the_host_actor() -> None:
    c = mock()
    tasks.train(c, c_param=0.5, reason="first try")
    assert commands(c) == [*PROBES, f"{EXEC} train --c-param 0.5 --reason 'first try'"]


def test_stage_with_alias_quotes_every_value() -> None:
    c = mock()
    tasks.stage(c, version="1; rm -rf /", stage="Production", alias="prod", reason="it's fine")
    assert commands(c)[-1] == (
        f"{EXEC} stage --version '1; rm -rf /' --stage Production --alias prod --reason 'it'\"'\"'s fine'"
    )


def test_rollback_to_a_version() -> None:
    c = mock()
    tasks.rollback(c, to=2)
    assert commands(c)[-1] == f"{EXEC} rollback --to 2"


def test_migrate_runs_in_the_trainer() -> None:
    c = mock()
    tasks.migrate(c, to="aliases", dry_run=True, model="m")
    assert commands(c) == [*PROBES, f"{EXEC} migrate --to aliases --dry-run --model m"]


def test_docker_compose_v1_is_used_when_the_plugin_is_missing() -> None:
    c = mock(docker_compose=False)
    tasks.train(c)
    assert commands(c) == [
        "docker compose version",
        "docker-compose version",
        "docker-compose ps --services --filter status=running",
        "docker-compose exec -T -e 'REGISTRY_ACTOR=ada lovelace' trainer python -m registry train",
    ]


def test_the_engine_is_asked_once_per_invocation() -> None:
    c = mock()
    tasks.history(c)
    tasks.versions(c, json=True)
    assert commands(c) == [*PROBES, f"{EXEC} history", f"{EXEC} versions --json"]


def test_the_actor_defaults_to_the_host_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGISTRY_ACTOR")
    c = mock()
    tasks.history(c)
    assert commands(c)[-1].startswith(
        f"docker compose exec -T -e {shlex.quote('REGISTRY_ACTOR=' + getpass.getuser())} trainer "
    )


def test_no_compose_cli_is_one_clear_message() -> None:
    c = MockContext(run={re.compile(".*"): Result(exited=127)})
    with pytest.raises(Exit) as failed:
        tasks.train(c)
    assert failed.value.code == 3
    assert "neither `docker compose` nor `docker-compose`" in str(failed.value.message)


def test_an_engine_that_does_not_answer_is_one_clear_message() -> None:
    c = mock(ps=ENGINE_DOWN)
    with pytest.raises(Exit) as failed:
        tasks.up(c)
    assert failed.value.code == 3
    assert "container engine does not answer" in str(failed.value.message)
    assert "Cannot connect to the Docker daemon" in str(failed.value.message)
    assert not any(" build" in command for command in commands(c))


def test_a_stopped_stack_says_to_run_up() -> None:
    c = mock(ps=Result(stdout="mlflow\n"))
    with pytest.raises(Exit) as failed:
        tasks.train(c)
    assert failed.value.code == 3
    assert "invoke up" in str(failed.value.message)


def test_the_cli_exit_code_comes_through() -> None:
    c = MockContext(
        run={
            "docker compose version": Result(),
            re.compile(r".* ps --services .*"): RUNNING,
            re.compile(r".* exec .*"): Result(exited=4),
        }
    )
    with pytest.raises(Exit) as failed:
        tasks.stage(c, version=9, stage="Production")
    assert failed.value.code == 4


@pytest.fixture
def polled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs `up` waits on (no real polling)."""
    urls: list[str] = []
    monkeypatch.setattr(tasks, "_wait_healthy", lambda url, timeout: urls.append(url))
    return urls


def hidden(c: MockContext, command: str) -> object:
    """The `hide` argument `command` was run with."""
    return next(call.kwargs.get("hide") for call in c.run.call_args_list if call.args[0] == command)


UP = [*PROBES, "docker compose config", INSPECT, "docker compose build", INSPECT, "docker compose up -d"]


def test_up_builds_quietly_starts_and_waits_until_healthy(
    polled: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    c = mock()
    tasks.up(c)
    assert commands(c) == UP
    assert hidden(c, "docker compose build") is True
    assert polled == ["http://127.0.0.1:5123"]
    out, err = capsys.readouterr()
    assert out == "MLflow UI: http://127.0.0.1:5123\n"
    assert err == ""  # no build steps, no "legacy builder" notice, no "Started"


def test_up_shows_the_build_output_when_the_image_changed(
    polled: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    c = mock(ids=[OLD_ID, NEW_ID])
    tasks.up(c)
    assert commands(c) == UP
    out, err = capsys.readouterr()
    assert out == f"{BUILD_LOG.stdout}MLflow UI: http://127.0.0.1:5123\n"
    assert err == BUILD_LOG.stderr


def test_a_first_build_prints_as_it_goes(polled: list[str]) -> None:
    c = mock(ids=[NO_IMAGE])
    tasks.up(c)
    assert commands(c) == [
        *PROBES,
        "docker compose config",
        INSPECT,
        "docker compose build",
        "docker compose up -d",
    ]
    assert hidden(c, "docker compose build") is None


def test_quiet_up_hides_even_a_first_build(polled: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    c = mock(ids=[NO_IMAGE])
    tasks.up(c, quiet=True)
    assert hidden(c, "docker compose build") is True
    assert capsys.readouterr() == ("MLflow UI: http://127.0.0.1:5123\n", "")


def test_up_with_docker_compose_v1(polled: list[str]) -> None:
    c = mock(docker_compose=False)
    tasks.up(c)
    assert commands(c)[3:] == [
        "docker-compose config",
        INSPECT,
        "docker-compose build",
        INSPECT,
        "docker-compose up -d",
    ]


def test_a_failed_build_shows_its_output_then_one_line_on_what_to_check(
    polled: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    broken = Result(
        stdout="STEP 1/12: FROM python:3.11-slim\n", stderr="Error: write child: broken pipe\n", exited=1
    )
    c = mock(build=broken)
    with pytest.raises(Exit) as failed:
        tasks.up(c)
    assert failed.value.code == 3
    message = str(failed.value.message)
    assert "\n" not in message
    assert message.startswith("error: `docker compose build` failed (exit 1)")
    assert 'eval "$(../shared/container-engine/up.sh)"' in message
    out, err = capsys.readouterr()
    assert out == broken.stdout and err == broken.stderr
    assert commands(c)[-1] == "docker compose build"
    assert polled == []


def test_a_failed_start_shows_the_engine_error_then_one_line_on_what_to_check(
    polled: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    engine_error = "ERROR: for mlflow  Cannot start service mlflow: write child: broken pipe\n"
    c = mock(started=Result(stderr=f"Creating network\n{engine_error}", exited=1))
    with pytest.raises(Exit) as failed:
        tasks.up(c)
    assert failed.value.code == 3
    message = str(failed.value.message)
    assert "\n" not in message
    assert message.startswith("error: `docker compose up -d` failed (exit 1): check the container engine")
    assert 'eval "$(../shared/container-engine/up.sh)"' in message
    assert "port 5123 (MLFLOW_PORT) is taken" in message
    assert capsys.readouterr().err.endswith(engine_error)
    assert polled == []


def test_up_gives_up_after_its_timeout() -> None:
    with pytest.raises(Exit) as failed:
        tasks._wait_healthy("http://127.0.0.1:9", timeout=0)
    assert failed.value.code == 3
    assert "not healthy" in str(failed.value.message)


@pytest.mark.parametrize(("volumes", "suffix"), [(False, ""), (True, " --volumes")])
def test_down_stops_the_stack(volumes: bool, suffix: str) -> None:
    c = mock()
    tasks.down(c, volumes=volumes)
    assert commands(c) == [*PROBES, "docker compose down" + suffix]


def test_logs_of_one_service() -> None:
    c = mock()
    tasks.logs(c, service="mlflow", follow=True, tail=50)
    assert commands(c)[-1] == "docker compose logs --follow --tail 50 mlflow"


def test_volumes_is_refused_for_the_local_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGISTRY_RUNNER", "local")
    c = mock()
    with pytest.raises(Exit) as failed:
        tasks.down(c, volumes=True)
    assert failed.value.code == 2
    assert commands(c) == []

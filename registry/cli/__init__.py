"""The command line: parses arguments, calls one domain function, prints, maps errors to exits.

`build_parser` and `main` live here; the handlers of the lifecycle commands in `lifecycle.py`, those
of promotion, settings, the local server, serving and events in `operations.py`; what both print
with in `output.py`.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from registry import validate
from registry.cli import lifecycle, operations
from registry.cli.output import Handler, fail
from registry.config import load_settings, with_tracking_uri
from registry.errors import BadInput, RegistryError, first_line
from registry.tables import EscapingWriter
from registry.timetravel import moment


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and exit code 2, without the usage banner."""

    def error(self, message: str) -> Any:
        raise BadInput(f"{message}; see `{self.prog} --help`")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    warnings.simplefilter("ignore")  # library warnings are not the user's business here
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = EscapingWriter(stdout), EscapingWriter(stderr)  # type: ignore[assignment]
    try:
        return _run(argv)
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        settings = load_settings()
        if getattr(args, "tracking_uri", None):
            settings = with_tracking_uri(settings, args.tracking_uri)
        handler: Handler = args.handler
        return handler(args, settings)
    except RegistryError as exc:
        fail(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (`versions | head`): stop quietly, as `seq` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # the one place where anything unexpected becomes exit 1
        fail(f"unexpected {type(exc).__name__}: {first_line(exc)}; please report it")
        return 1


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--model", default=argparse.SUPPRESS, help="registered model (MODEL_NAME)")
    common.add_argument(
        "--tracking-uri", default=argparse.SUPPRESS, help="MLflow server (MLFLOW_TRACKING_URI)"
    )
    parser = _Parser(
        prog="registry",
        description="Take a model through the MLflow Model Registry lifecycle.",
        parents=[common],
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def reason(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--reason", default="", type=validate.reason, help="why, kept in the ledger")

    def guarded(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--force", action="store_true", help="override failed gates or alias protection (needs --reason)"
        )
        sub.add_argument(
            "--dry-run",
            action="store_true",
            help="print the plan and the gates, change nothing (exit 5 if refused)",
        )

    sub = command("train", lifecycle.train, "train Iris LogisticRegression and register a new version")
    sub.add_argument(
        "--c-param", type=validate.positive("c-param"), default=1.0, help="inverse regularisation C (1.0)"
    )
    sub.add_argument(
        "--max-iter", type=validate.whole("max-iter", 1, 100_000), default=200, help="solver iterations (200)"
    )
    sub.add_argument(
        "--seed", type=validate.whole("seed", 0, 2**32 - 1), default=42, help="split and solver seed (42)"
    )
    reason(sub)

    sub = command("versions", lifecycle.versions, "list versions, newest first, with stage and aliases")
    sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub.add_argument("--stage", type=validate.stage, help="only versions in this stage")
    sub.add_argument("--alias", type=validate.alias, help="only the version this alias points at")
    sub.add_argument("--limit", type=_positive, help="at most this many versions")

    sub = command("stage", lifecycle.stage, "move a version to a stage, archiving the versions there")
    sub.add_argument("--version", required=True, type=validate.version_number, help="version number")
    sub.add_argument(
        "--stage", required=True, type=validate.stage, help="None, Staging, Production or Archived"
    )
    sub.add_argument("--alias", type=validate.alias, help="also point this alias at the version")
    sub.add_argument(
        "--no-archive", action="store_true", help="keep the current Staging versions (Staging only)"
    )
    reason(sub)
    guarded(sub)

    sub = command("alias", lifecycle.alias, "point an alias at a version, or delete it")
    sub.add_argument("--name", required=True, type=validate.alias, help="alias name, such as champion")
    target = sub.add_mutually_exclusive_group(required=True)
    target.add_argument("--version", type=validate.version_number, help="version to point at")
    target.add_argument("--delete", action="store_true", help="remove the alias")
    reason(sub)
    guarded(sub)

    sub = command("rollback", lifecycle.rollback, "make an earlier version Production again")
    sub.add_argument(
        "--to", type=validate.version_number, help="version to restore (default: the previous one)"
    )
    sub.add_argument(
        "--alias", type=validate.alias, help="also point this alias at it (PROD_ALIAS always follows)"
    )
    reason(sub)
    guarded(sub)

    sub = command("history", lifecycle.history, "the ledger of changes, oldest first")
    shape = sub.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print JSON instead of a table")
    shape.add_argument(
        "--plot", metavar="FILE", help="draw the timeline of stages and aliases as PNG (- for stdout)"
    )
    when = sub.add_mutually_exclusive_group()
    when.add_argument(
        "--at", type=moment, help="stage holders and aliases at this UTC time, 2026-11-30T12:00:00Z"
    )
    when.add_argument("--version", type=validate.version_number, help="only the life of this version")
    sub.add_argument("--limit", type=int, help="only the newest N events (table default 100; 0: all)")

    sub = command("migrate", lifecycle.migrate, "switch the model's lifecycle between stages and aliases")
    sub.add_argument("--to", required=True, type=validate.lifecycle, help="stages or aliases")
    sub.add_argument("--dry-run", action="store_true", help="print the changes, change nothing")
    reason(sub)

    sub = command("doctor", lifecycle.doctor, "find drift between registry, rules and ledger (exit 6)")
    sub.add_argument("--fix", action="store_true", help="repair what is safe, each repair kept in the ledger")
    sub.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sub = command("predict", lifecycle.predict, "load a version by URI and predict on its input example")
    source = sub.add_mutually_exclusive_group(required=True)
    source.add_argument("--uri", help="models:/NAME/1, models:/NAME/Production or models:/NAME@ALIAS")
    source.add_argument("--version", type=validate.version_number, help="same as models:/NAME/N")
    source.add_argument("--stage", type=validate.stage, help="same as models:/NAME/STAGE")
    source.add_argument("--alias", type=validate.alias, help="same as models:/NAME@ALIAS")

    sub = command(
        "promote",
        operations.promote,
        "copy a version into another registered model, on this server or another one (at most once, gated)",
    )
    picked = sub.add_mutually_exclusive_group(required=True)
    picked.add_argument("--version", type=validate.version_number, help="the version of --model to copy")
    picked.add_argument(
        "--alias", type=validate.alias, help="copy the version of --model this alias points at"
    )
    sub.add_argument(
        "--to-model",
        required=True,
        type=validate.model_name,
        help="registered model to copy into, such as prod.iris_clf",
    )
    sub.add_argument(
        "--to-tracking-uri", help="the target's MLflow server (default: the same server as --model's)"
    )
    sub.add_argument("--to-alias", type=validate.alias, help="point this alias of --to-model at the copy")
    reason(sub)
    guarded(sub)

    sub = command(
        "prune-locks",
        lifecycle.prune_locks,
        "delete released lock tickets older than N days (needs delete permission)",
    )
    sub.add_argument("--older-than", type=_days, default=30.0, metavar="DAYS", help="age in days (30)")
    sub.add_argument("--dry-run", action="store_true", help="list the tickets, delete nothing")

    sub = command(
        "settings", operations.settings, "list every setting with its value here (.env, environment)"
    )
    output = sub.add_mutually_exclusive_group()
    output.add_argument("--env-example", action="store_true", help="print .env.example (every default)")
    output.add_argument("--markdown", action="store_true", help="print the settings table (docs/settings.md)")

    sub = command("up", operations.up, "start the local MLflow server unless it runs (local runner)")
    sub.add_argument("--quiet", action="store_true", help="print nothing when it already runs")
    command("down", operations.down, "stop the local MLflow server started by `up`")
    operations.serving_commands(command, common)
    return parser


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise BadInput(f"--limit {text!r} is not a whole number of at least 1")
    return int(text)


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not 0 <= days <= 36500:  # NaN fails this too
        raise BadInput(f"--older-than {text!r} is not a number of days from 0 to 36500")
    return days


def main_exit() -> None:
    """Entry point of `python -m registry` and of the `registry` console script."""
    code = main()
    # The process ends here, so nothing needs collecting: spare the interpreter's shutdown its walks
    # over the ~150,000 objects importing mlflow leaves (0.3-0.6 s of every command on this machine).
    gc.freeze()
    raise SystemExit(code)

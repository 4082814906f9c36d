"""The command line: parses arguments, calls one domain function, prints, maps errors to exits."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from registry import validate
from registry.config import Settings, load_settings, redact, with_tracking_uri
from registry.errors import BadInput, Drift, Refused, RegistryError, first_line
from registry.ledger import Change
from registry.plan import Plan
from registry.tables import EscapingWriter, escaped, table
from registry.timetravel import Snapshot, moment

Handler = Callable[[argparse.Namespace, Settings], int]


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
        _fail(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (`versions | head`): stop quietly, as `seq` does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # the one place where anything unexpected becomes exit 1
        _fail(f"unexpected {type(exc).__name__}: {first_line(exc)}; please report it")
        return 1


def _fail(message: str) -> None:
    secret = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    print(f"error: {escaped(redact(message, (secret,)), one_line=True)}", file=sys.stderr)


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

    sub = command("train", _train, "train Iris LogisticRegression and register a new version")
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

    sub = command("versions", _versions, "list versions, newest first, with stage and aliases")
    sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub.add_argument("--stage", type=validate.stage, help="only versions in this stage")
    sub.add_argument("--alias", type=validate.alias, help="only the version this alias points at")
    sub.add_argument("--limit", type=_positive, help="at most this many versions")

    sub = command("stage", _stage, "move a version to a stage, archiving the versions there")
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

    sub = command("alias", _alias, "point an alias at a version, or delete it")
    sub.add_argument("--name", required=True, type=validate.alias, help="alias name, such as champion")
    target = sub.add_mutually_exclusive_group(required=True)
    target.add_argument("--version", type=validate.version_number, help="version to point at")
    target.add_argument("--delete", action="store_true", help="remove the alias")
    reason(sub)
    guarded(sub)

    sub = command("rollback", _rollback, "make an earlier version Production again")
    sub.add_argument(
        "--to", type=validate.version_number, help="version to restore (default: the previous one)"
    )
    sub.add_argument(
        "--alias", type=validate.alias, help="also point this alias at it (PROD_ALIAS always follows)"
    )
    reason(sub)
    guarded(sub)

    sub = command("history", _history, "the ledger of changes, oldest first")
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

    sub = command("migrate", _migrate, "switch the model's lifecycle between stages and aliases")
    sub.add_argument("--to", required=True, type=validate.lifecycle, help="stages or aliases")
    sub.add_argument("--dry-run", action="store_true", help="print the changes, change nothing")
    reason(sub)

    sub = command("doctor", _doctor, "find drift between registry, rules and ledger (exit 6)")
    sub.add_argument("--fix", action="store_true", help="repair what is safe, each repair kept in the ledger")
    sub.add_argument("--json", action="store_true", help="print JSON instead of a table")

    sub = command("predict", _predict, "load a version by URI and predict on its input example")
    source = sub.add_mutually_exclusive_group(required=True)
    source.add_argument("--uri", help="models:/NAME/1, models:/NAME/Production or models:/NAME@ALIAS")
    source.add_argument("--version", type=validate.version_number, help="same as models:/NAME/N")
    source.add_argument("--stage", type=validate.stage, help="same as models:/NAME/STAGE")
    source.add_argument("--alias", type=validate.alias, help="same as models:/NAME@ALIAS")

    sub = command(
        "promote",
        _promote,
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
        _prune_locks,
        "delete released lock tickets older than N days (needs delete permission)",
    )
    sub.add_argument("--older-than", type=_days, default=30.0, metavar="DAYS", help="age in days (30)")
    sub.add_argument("--dry-run", action="store_true", help="list the tickets, delete nothing")

    sub = command("settings", _settings, "list every setting with its value here (.env, environment)")
    output = sub.add_mutually_exclusive_group()
    output.add_argument("--env-example", action="store_true", help="print .env.example (every default)")
    output.add_argument("--markdown", action="store_true", help="print the settings table (docs/settings.md)")

    sub = command("up", _up, "start the local MLflow server unless it runs (local runner)")
    sub.add_argument("--quiet", action="store_true", help="print nothing when it already runs")
    command("down", _down, "stop the local MLflow server started by `up`")
    _serving_commands(command, common)
    return parser


def _positive(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise BadInput(f"--limit {text!r} is not a whole number of at least 1")
    return int(text)


def _model(args: argparse.Namespace, settings: Settings) -> str:
    given = getattr(args, "model", None)
    return validate.model_name(settings.model_name if given is None else given)


def _registry(settings: Settings) -> Any:
    from registry.client import Registry

    return Registry(settings, notify=lambda message: print(message, file=sys.stderr, flush=True))


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from registry.train import TrainParams, train_and_register

    model = _model(args, settings)
    params = TrainParams(c_param=args.c_param, max_iter=args.max_iter, seed=args.seed)
    trained = train_and_register(_registry(settings), model, params, args.reason)
    print(
        f"Registered {trained.model} version {trained.version} "
        f"(run {trained.run_id}, accuracy {trained.accuracy:.4f})"
    )
    return 0


def _versions(args: argparse.Namespace, settings: Settings) -> int:
    from registry.versions import list_versions

    model = _model(args, settings)
    rows = list_versions(_registry(settings), model, args.stage, args.alias, args.limit)
    if args.json:
        print(json.dumps([row.as_json() for row in rows], indent=2))
    elif not rows:
        print(f"No versions of {model} match.")
    else:
        cells = [
            [str(r.version), r.role or r.stage, ", ".join(r.aliases), r.created, r.run_id,
             "" if r.accuracy is None else f"{r.accuracy:.4f}"]
            for r in rows
        ]  # fmt: skip
        role = "stage" if rows[0].role is None else "role"  # LIFECYCLE=aliases: the role aliases
        print(table(cells, ["version", role, "aliases", "created", "run_id", "accuracy"]))
    return 0


def _stage(args: argparse.Namespace, settings: Settings) -> int:
    from registry.promote import stage

    model = _model(args, settings)
    plan = stage(
        _registry(settings),
        model,
        args.version,
        args.stage,
        alias=args.alias,
        archive=not args.no_archive,
        reason=args.reason,
        force=args.force,
        dry_run=args.dry_run,
    )
    return _report(plan, f"version {args.version} of {model} is already in {args.stage}", args.dry_run)


def _alias(args: argparse.Namespace, settings: Settings) -> int:
    from registry.promote import delete_alias, set_alias

    model = _model(args, settings)
    registry = _registry(settings)
    policy = {"reason": args.reason, "force": args.force, "dry_run": args.dry_run}
    if args.delete:
        plan = delete_alias(registry, model, args.name, **policy)
    else:
        plan = set_alias(registry, model, args.name, args.version, **policy)
    return _report(
        plan, f"alias {args.name} of {model} already points at version {args.version}", args.dry_run
    )


def _rollback(args: argparse.Namespace, settings: Settings) -> int:
    from registry.rollback import rollback

    model = _model(args, settings)
    done = rollback(
        _registry(settings),
        model,
        to=args.to,
        alias=args.alias,
        reason=args.reason,
        force=args.force,
        dry_run=args.dry_run,
    )
    nothing = f"version {done.target} of {model} is already in Production; nothing to roll back"
    return _report(done.plan, nothing, args.dry_run)


def _history(args: argparse.Namespace, settings: Settings) -> int:
    from registry.ledger import events
    from registry.timetravel import life, replay

    if args.limit is not None and args.limit < 0:
        raise BadInput(f"--limit {args.limit} is negative; use 0 for every event")
    if args.limit is not None and (args.at or args.plot):
        raise BadInput("--limit goes with the table or --json, not with --at or --plot")
    model = _model(args, settings)
    found = events(_registry(settings), model)
    if args.at:
        return _snapshot(replay(found, args.at), args.json)
    if args.version:
        found = life(found, args.version)
    if args.plot == "-":
        from registry.timeline import render

        sys.stdout.buffer.write(render(found, model))
        sys.stdout.flush()
        return 0
    if args.plot:
        from registry.timeline import write

        print(f"Wrote {write(found, model, args.plot)}")
        return 0
    limit = (0 if args.json else 100) if args.limit is None else args.limit
    left_out = max(len(found) - limit, 0) if limit else 0
    shown = found[left_out:]
    note = f"left out: the {left_out:,} oldest of {len(found):,} events; --limit 0 shows them all"
    if args.json:
        print(json.dumps([event.as_json() for event in shown], indent=2))
        if left_out:
            print(note, file=sys.stderr)
    elif not found:
        print(f"The ledger of {model} is empty: no change has been made through this tool yet.")
    else:
        keys = ["seq", "time", "actor", "action", "version", "from", "to", "alias", "reason"]
        fields = (event.as_json() for event in shown)
        rows = [["" if row[key] is None else str(row[key]) for key in keys] for row in fields]
        print(table(rows, keys))
        if left_out:
            print(f"({note})")
    return 0


def _snapshot(snapshot: Snapshot, as_json: bool) -> int:
    if as_json:
        print(json.dumps(snapshot.as_json(), indent=2))
        return 0
    last = snapshot.last_seq
    print(f"At {snapshot.at} ({'before any change' if last is None else f'after ledger event {last}'}):")
    if snapshot.lifecycle != "stages":
        print(f"  lifecycle: {snapshot.lifecycle} (the role aliases hold Production and Staging)")
    for stage, numbers in snapshot.stages.items():
        print(f"  {stage}: {', '.join(map(str, numbers)) or '(none)'}")
    for alias, number in snapshot.aliases.items():
        print(f"  alias {alias}: version {number}")
    for seqs, why in (
        (snapshot.refused, "refused, changed nothing"),
        (snapshot.uncounted, "not counted: a later event comes first in the ledger"),
    ):
        if seqs:
            print(f"Ledger event{'s' if len(seqs) > 1 else ''} {', '.join(map(str, seqs))}: {why}.")
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    from registry.migrate import migrate

    model = _model(args, settings)
    names = {mode: load_settings(lifecycle=mode) for mode in ("stages", "aliases")}
    plan = migrate(_registry(settings), model, args.to, names, reason=args.reason, dry_run=args.dry_run)
    code = _report(plan, f"{model} is in the {args.to} lifecycle already", args.dry_run)
    if plan.changes and not args.dry_run and settings.lifecycle != args.to:
        print(f"Set LIFECYCLE={args.to} (.env or the environment) for the commands on {model} now.")
    return code


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from registry.doctor import doctor

    model = _model(args, settings)
    report = doctor(_registry(settings), model, args.fix)
    if args.json:
        print(json.dumps([finding.as_json() for finding in report.findings], indent=2))
    else:
        for change in report.repaired:
            print(f"repaired: {describe(change)}")
        if report.findings:
            rows = [
                [f.check, f.subject, f.detail, "yes" if f.repair else "no: needs a person"]
                for f in report.findings
            ]
            print(table(rows, ["check", "subject", "problem", "--fix"]))
    if report.findings:
        _fail(f"{len(report.findings)} problem(s) in {model}" + ("" if args.fix else "; see `doctor --fix`"))
        return Drift.exit_code
    summary = f"{model}: all mended." if report.repaired else f"{model}: no drift found."
    print(summary, file=sys.stderr if args.json else sys.stdout)  # --json: stdout holds JSON only
    return 0


def _predict(args: argparse.Namespace, settings: Settings) -> int:
    from registry.predict import predict

    model = _model(args, settings)
    if args.uri:
        uri = args.uri
    elif args.version:
        uri = f"models:/{model}/{args.version}"
    elif args.stage:
        uri = f"models:/{model}/{args.stage}"
    else:
        uri = f"models:/{model}@{args.alias}"
    target, reference = validate.models_uri(uri)
    result = predict(_registry(settings), target, reference)
    print(f"{uri} -> version {result.version}")
    print(f"predictions: {result.predictions}")
    return 0


def _promote(args: argparse.Namespace, settings: Settings) -> int:
    from registry.crossenv import promote

    model = _model(args, settings)
    source = target = _registry(settings)
    if args.to_tracking_uri:
        elsewhere = with_tracking_uri(settings, args.to_tracking_uri)
        if elsewhere.tracking_uri != settings.tracking_uri:
            target = _registry(elsewhere)
    done = promote(
        source,
        model,
        target,
        args.to_model,
        number=args.version,
        alias=args.alias,
        to_alias=args.to_alias,
        reason=args.reason,
        force=args.force,
        dry_run=args.dry_run,
    )
    if done.copy is None:
        print(f"would copy {done.source} to {done.target} as a new version")
    elif done.made:
        print(f"Copied {done.source} to {done.target} version {done.copy}.")
    else:
        print(f"{done.source} is already {done.target} version {done.copy}: not copied again.")
    prefix = "would change " if args.dry_run else ""
    for change in done.plan.changes:
        if change.action != "promote":
            print(prefix + describe(change).replace("version 0", "the copy"))
    for check in done.plan.checks:
        if args.dry_run or not check.passed:
            verdict = "pass" if check.passed else ("FAIL" if args.dry_run else "FORCED")
            print(f"{check.gate} gate: {verdict}: {check.detail}")
    if args.dry_run and done.plan.refusal:
        _fail(done.plan.refusal)
        return Refused.exit_code
    if args.dry_run:
        print("Dry run: nothing was changed.")
    return 0


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        days = -1.0
    if not 0 <= days <= 36500:  # NaN fails this too
        raise BadInput(f"--older-than {text!r} is not a number of days from 0 to 36500")
    return days


def _prune_locks(args: argparse.Namespace, settings: Settings) -> int:
    from registry.lock import lock_name, prune

    model = _model(args, settings)
    pruned = prune(_registry(settings), model, args.older_than, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{lock_name(model)}: {verb} {len(pruned)} lock ticket(s) older than {args.older_than:g} days.")
    return 0


def _settings(args: argparse.Namespace, settings: Settings) -> int:
    from registry import config

    if args.env_example:
        print(config.env_example(), end="")
    elif args.markdown:
        print(config.markdown_table())
    else:
        rows = [
            [f.metadata["key"], config.current_text(settings, f), f.metadata["doc"]]
            for f in config.declared()
        ]
        print(table(rows, ["key", "value", "meaning"], max_cell=200))
    return 0


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from registry.localserver import start

    message = start(settings)
    if not (args.quiet and "already running" in message):
        print(message)
    return 0


def _down(args: argparse.Namespace, settings: Settings) -> int:
    from registry.localserver import stop

    print(stop(settings))
    return 0


def _serving_commands(
    command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """`serve` and `hooks` (issue 12): a model server that follows an alias, and webhooks."""
    sub = command("serve", _serve, "serve the version an alias points at over HTTP, following the alias")
    sub.add_argument("--alias", type=validate.alias, help="alias to follow (default PROD_ALIAS, prod)")
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    sub.add_argument("--port", type=validate.whole("port", 1, 65535), help="port (default SERVE_PORT, 8080)")
    sub.add_argument("--workers", type=validate.whole("workers", 1, 64), default=1, help="processes (1)")

    hooks = command("hooks", _hooks_list, "webhooks: every change reaches a URL as a signed POST")
    actions = hooks.add_subparsers(
        title="actions", metavar="ACTION", required=True, help="add, list, remove, test"
    )

    def action(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, parents=[common], help=help_text, description=help_text)
        parser.set_defaults(handler=handler)
        return parser

    sub = action(
        "add", _hooks_add, "subscribe a URL to the registry's events (the same name again: update it)"
    )
    sub.add_argument("--url", required=True, help="where to POST each event, such as https://host/path")
    sub.add_argument(
        "--secret", help="HMAC secret of the signatures (default: a new random one, printed once)"
    )
    sub.add_argument("--name", default="registry-events", help="webhook name (registry-events)")
    sub.add_argument(
        "--events", help="comma-separated MLflow events (default: all six model registry events)"
    )
    sub = action("list", _hooks_list, "list the server's webhooks")
    sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub = action("remove", _hooks_remove, "delete a webhook")
    sub.add_argument("--name", required=True, help="webhook name")
    sub = action("test", _hooks_test, "have the server deliver MLflow's example event to a webhook")
    sub.add_argument("--name", required=True, help="webhook name")
    sub.add_argument("--event", help="which event's example (default: the webhook's first event)")


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from registry.serve import configure_logging, serve

    model = _model(args, settings)
    alias = args.alias or settings.prod_alias
    if not alias:
        raise BadInput("PROD_ALIAS is empty: name the alias to follow with --alias")
    configure_logging()
    serve(settings, model, alias, args.host, args.port or settings.serve_port, args.workers)
    return 0


def _hooks_add(args: argparse.Namespace, settings: Settings) -> int:
    from registry import hooks

    url, name = hooks.hook_url(args.url), hooks.hook_name(args.name)
    events = hooks.event_names(args.events) if args.events is not None else hooks.REGISTRY_EVENTS
    added = hooks.add(_registry(settings), url, name, args.secret, events)
    hook = added.hook
    done = "Created" if added.created else "Updated"
    print(f"{done} webhook {hook.name}: {hook.url} gets {', '.join(hook.events)}")
    if added.secret:
        print(f"secret: {added.secret}")
        print(
            "(shown once: MLflow keeps it encrypted; the receiver checks signatures with it)", file=sys.stderr
        )
    return 0


def _hooks_list(args: argparse.Namespace, settings: Settings) -> int:
    from registry.hooks import list_hooks

    found = list_hooks(_registry(settings))
    if args.json:
        print(json.dumps([hook.as_json() for hook in found], indent=2))
    elif not found:
        print("No webhooks on this server; add one with `hooks add --url URL`.")
    else:
        rows = [[h.name, h.url, ", ".join(h.events), h.status, h.created] for h in found]
        print(table(rows, ["name", "url", "events", "status", "created"]))
    return 0


def _hooks_remove(args: argparse.Namespace, settings: Settings) -> int:
    from registry.hooks import hook_name, remove

    name = hook_name(args.name)
    hook = remove(_registry(settings), name)
    print(f"Removed webhook {hook.name} ({hook.url}).")
    return 0


def _hooks_test(args: argparse.Namespace, settings: Settings) -> int:
    from registry.errors import Unreachable
    from registry.hooks import event_names, hook_name, try_hook

    event = event_names(args.event)[0] if args.event else None
    name = hook_name(args.name)
    tried = try_hook(_registry(settings), name, event)
    if tried.success:
        print(f"Delivered: the receiver answered HTTP {tried.status}.")
        return 0
    if tried.status is None:
        raise Unreachable(f"the server could not deliver to webhook {args.name!r}: {tried.error}")
    raise Refused(f"the receiver of webhook {args.name!r} answered HTTP {tried.status}: {tried.body}")


def _report(plan: Plan, nothing: str, dry_run: bool) -> int:
    """Print the changes (a dry run: the plan and every check); exit 5 when a dry run is refused."""
    if not plan.changes:
        print(f"Nothing to change: {nothing}.")
    prefix = "would change " if dry_run else ""
    for change in plan.changes:
        print(prefix + describe(change))
    for check in plan.checks:
        if dry_run or not check.passed:  # a failed check on a real change was forced
            verdict = "pass" if check.passed else ("FORCED" if not dry_run else "FAIL")
            print(f"{check.gate} gate: {verdict}: {check.detail}")
    if dry_run and plan.refusal:
        _fail(plan.refusal)
        return Refused.exit_code
    if dry_run:
        print("Dry run: nothing was changed.")
    return 0


def describe(change: Change) -> str:
    """One line for the user about one change."""
    if change.action == "alias":
        before = f"version {change.from_}" if change.from_ else "(unset)"
        return f"alias {change.alias}: {before} -> version {change.version}"
    if change.action == "alias-delete":
        return f"alias {change.alias}: version {change.version} -> (deleted)"
    if change.action == "lifecycle":
        return f"lifecycle: {change.from_ or '(none)'} -> {change.to}"
    if change.action in ("retire", "unretire"):
        return f"version {change.version}: tag lifecycle=retired " + ("set" if change.to else "removed")
    if change.action == "sync":
        return f"version {change.version}: MLflow stage {change.from_} -> {change.to} (its role stays)"
    if change.action == "observed":
        return f"{change.alias or 'version ' + str(change.version)}: recorded {change.from_} -> {change.to}"
    return f"version {change.version}: {change.from_} -> {change.to}" + (
        " (replaced)" if change.action == "archive" else ""
    )


def main_exit() -> None:
    """Entry point of `python -m registry` and of the `registry` console script."""
    code = main()
    # The process ends here, so nothing needs collecting: spare the interpreter's shutdown its walks
    # over the ~150,000 objects importing mlflow leaves (0.3-0.6 s of every command on this machine).
    gc.freeze()
    raise SystemExit(code)

"""Handlers of the lifecycle commands: train, versions, stage, alias, rollback, history, migrate,
doctor, predict, prune-locks."""

from __future__ import annotations

import argparse
import json
import sys

from registry import validate
from registry.cli.output import describe, fail, model_of, registry_of, report
from registry.config import Settings, load_settings
from registry.errors import BadInput, Drift
from registry.tables import table
from registry.timetravel import Snapshot


def train(args: argparse.Namespace, settings: Settings) -> int:
    from registry.train import TrainParams, train_and_register

    model = model_of(args, settings)
    params = TrainParams(c_param=args.c_param, max_iter=args.max_iter, seed=args.seed)
    trained = train_and_register(registry_of(settings), model, params, args.reason)
    print(
        f"Registered {trained.model} version {trained.version} "
        f"(run {trained.run_id}, accuracy {trained.accuracy:.4f})"
    )
    return 0


def versions(args: argparse.Namespace, settings: Settings) -> int:
    from registry.versions import list_versions

    model = model_of(args, settings)
    rows = list_versions(registry_of(settings), model, args.stage, args.alias, args.limit)
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


def stage(args: argparse.Namespace, settings: Settings) -> int:
    from registry.promote import stage

    model = model_of(args, settings)
    plan = stage(
        registry_of(settings),
        model,
        args.version,
        args.stage,
        alias=args.alias,
        archive=not args.no_archive,
        reason=args.reason,
        force=args.force,
        dry_run=args.dry_run,
    )
    return report(plan, f"version {args.version} of {model} is already in {args.stage}", args.dry_run)


def alias(args: argparse.Namespace, settings: Settings) -> int:
    from registry.promote import delete_alias, set_alias

    model = model_of(args, settings)
    registry = registry_of(settings)
    policy = {"reason": args.reason, "force": args.force, "dry_run": args.dry_run}
    if args.delete:
        plan = delete_alias(registry, model, args.name, **policy)
    else:
        plan = set_alias(registry, model, args.name, args.version, **policy)
    return report(
        plan, f"alias {args.name} of {model} already points at version {args.version}", args.dry_run
    )


def rollback(args: argparse.Namespace, settings: Settings) -> int:
    from registry.rollback import rollback

    model = model_of(args, settings)
    done = rollback(
        registry_of(settings),
        model,
        to=args.to,
        alias=args.alias,
        reason=args.reason,
        force=args.force,
        dry_run=args.dry_run,
    )
    nothing = f"version {done.target} of {model} is already in Production; nothing to roll back"
    return report(done.plan, nothing, args.dry_run)


def history(args: argparse.Namespace, settings: Settings) -> int:
    from registry.ledger import events
    from registry.timetravel import life, replay

    if args.limit is not None and args.limit < 0:
        raise BadInput(f"--limit {args.limit} is negative; use 0 for every event")
    if args.limit is not None and (args.at or args.plot):
        raise BadInput("--limit goes with the table or --json, not with --at or --plot")
    model = model_of(args, settings)
    found = events(registry_of(settings), model)
    if args.at:
        return snapshot(replay(found, args.at), args.json)
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


def snapshot(snapshot: Snapshot, as_json: bool) -> int:
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


def migrate(args: argparse.Namespace, settings: Settings) -> int:
    from registry.migrate import migrate

    model = model_of(args, settings)
    names = {mode: load_settings(lifecycle=mode) for mode in ("stages", "aliases")}
    plan = migrate(registry_of(settings), model, args.to, names, reason=args.reason, dry_run=args.dry_run)
    code = report(plan, f"{model} is in the {args.to} lifecycle already", args.dry_run)
    if plan.changes and not args.dry_run and settings.lifecycle != args.to:
        print(f"Set LIFECYCLE={args.to} (.env or the environment) for the commands on {model} now.")
    return code


def doctor(args: argparse.Namespace, settings: Settings) -> int:
    from registry.doctor import doctor

    model = model_of(args, settings)
    report = doctor(registry_of(settings), model, args.fix)
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
        fail(f"{len(report.findings)} problem(s) in {model}" + ("" if args.fix else "; see `doctor --fix`"))
        return Drift.exit_code
    summary = f"{model}: all mended." if report.repaired else f"{model}: no drift found."
    print(summary, file=sys.stderr if args.json else sys.stdout)  # --json: stdout holds JSON only
    return 0


def predict(args: argparse.Namespace, settings: Settings) -> int:
    from registry.predict import predict

    model = model_of(args, settings)
    if args.uri:
        uri = args.uri
    elif args.version:
        uri = f"models:/{model}/{args.version}"
    elif args.stage:
        uri = f"models:/{model}/{args.stage}"
    else:
        uri = f"models:/{model}@{args.alias}"
    target, reference = validate.models_uri(uri)
    result = predict(registry_of(settings), target, reference)
    print(f"{uri} -> version {result.version}")
    print(f"predictions: {result.predictions}")
    return 0


def prune_locks(args: argparse.Namespace, settings: Settings) -> int:
    from registry.lock import lock_name, prune

    model = model_of(args, settings)
    pruned = prune(registry_of(settings), model, args.older_than, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    print(f"{lock_name(model)}: {verb} {len(pruned)} lock ticket(s) older than {args.older_than:g} days.")
    return 0

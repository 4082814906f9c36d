"""Handlers of promote, settings, up, down, serve and hooks."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from registry import validate
from registry.cli.output import Handler, describe, fail, model_of, registry_of
from registry.config import Settings, with_tracking_uri
from registry.errors import BadInput, Refused
from registry.tables import table


def promote(args: argparse.Namespace, settings: Settings) -> int:
    from registry.crossenv import promote

    model = model_of(args, settings)
    source = target = registry_of(settings)
    if args.to_tracking_uri:
        elsewhere = with_tracking_uri(settings, args.to_tracking_uri)
        if elsewhere.tracking_uri != settings.tracking_uri:
            target = registry_of(elsewhere)
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
        fail(done.plan.refusal)
        return Refused.exit_code
    if args.dry_run:
        print("Dry run: nothing was changed.")
    return 0


def settings(args: argparse.Namespace, settings: Settings) -> int:
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


def up(args: argparse.Namespace, settings: Settings) -> int:
    from registry.localserver import start

    message = start(settings)
    if not (args.quiet and "already running" in message):
        print(message)
    return 0


def down(args: argparse.Namespace, settings: Settings) -> int:
    from registry.localserver import stop

    print(stop(settings))
    return 0


def serving_commands(
    command: Callable[..., argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """`serve` and `hooks` (issue 12): a model server that follows an alias, and webhooks."""
    sub = command("serve", serve, "serve the version an alias points at over HTTP, following the alias")
    sub.add_argument("--alias", type=validate.alias, help="alias to follow (default PROD_ALIAS, prod)")
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    sub.add_argument("--port", type=validate.whole("port", 1, 65535), help="port (default SERVE_PORT, 8080)")
    sub.add_argument("--workers", type=validate.whole("workers", 1, 64), default=1, help="processes (1)")

    hooks = command("hooks", hooks_list, "webhooks: every change reaches a URL as a signed POST")
    actions = hooks.add_subparsers(
        title="actions", metavar="ACTION", required=True, help="add, list, remove, test"
    )

    def action(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, parents=[common], help=help_text, description=help_text)
        parser.set_defaults(handler=handler)
        return parser

    sub = action(
        "add", hooks_add, "subscribe a URL to the registry's events (the same name again: update it)"
    )
    sub.add_argument("--url", required=True, help="where to POST each event, such as https://host/path")
    sub.add_argument(
        "--secret", help="HMAC secret of the signatures (default: a new random one, printed once)"
    )
    sub.add_argument("--name", default="registry-events", help="webhook name (registry-events)")
    sub.add_argument(
        "--events", help="comma-separated MLflow events (default: all six model registry events)"
    )
    sub = action("list", hooks_list, "list the server's webhooks")
    sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub = action("remove", hooks_remove, "delete a webhook")
    sub.add_argument("--name", required=True, help="webhook name")
    sub = action("test", hooks_test, "have the server deliver MLflow's example event to a webhook")
    sub.add_argument("--name", required=True, help="webhook name")
    sub.add_argument("--event", help="which event's example (default: the webhook's first event)")


def serve(args: argparse.Namespace, settings: Settings) -> int:
    from registry.serve import configure_logging, serve

    model = model_of(args, settings)
    alias = args.alias or settings.prod_alias
    if not alias:
        raise BadInput("PROD_ALIAS is empty: name the alias to follow with --alias")
    configure_logging()
    serve(settings, model, alias, args.host, args.port or settings.serve_port, args.workers)
    return 0


def hooks_add(args: argparse.Namespace, settings: Settings) -> int:
    from registry import hooks

    url, name = hooks.hook_url(args.url), hooks.hook_name(args.name)
    events = hooks.event_names(args.events) if args.events is not None else hooks.REGISTRY_EVENTS
    added = hooks.add(registry_of(settings), url, name, args.secret, events)
    hook = added.hook
    done = "Created" if added.created else "Updated"
    print(f"{done} webhook {hook.name}: {hook.url} gets {', '.join(hook.events)}")
    if added.secret:
        print(f"secret: {added.secret}")
        print(
            "(shown once: MLflow keeps it encrypted; the receiver checks signatures with it)", file=sys.stderr
        )
    return 0


def hooks_list(args: argparse.Namespace, settings: Settings) -> int:
    from registry.hooks import list_hooks

    found = list_hooks(registry_of(settings))
    if args.json:
        print(json.dumps([hook.as_json() for hook in found], indent=2))
    elif not found:
        print("No webhooks on this server; add one with `hooks add --url URL`.")
    else:
        rows = [[h.name, h.url, ", ".join(h.events), h.status, h.created] for h in found]
        print(table(rows, ["name", "url", "events", "status", "created"]))
    return 0


def hooks_remove(args: argparse.Namespace, settings: Settings) -> int:
    from registry.hooks import hook_name, remove

    name = hook_name(args.name)
    hook = remove(registry_of(settings), name)
    print(f"Removed webhook {hook.name} ({hook.url}).")
    return 0


def hooks_test(args: argparse.Namespace, settings: Settings) -> int:
    from registry.errors import Unreachable
    from registry.hooks import event_names, hook_name, try_hook

    event = event_names(args.event)[0] if args.event else None
    name = hook_name(args.name)
    tried = try_hook(registry_of(settings), name, event)
    if tried.success:
        print(f"Delivered: the receiver answered HTTP {tried.status}.")
        return 0
    if tried.status is None:
        raise Unreachable(f"the server could not deliver to webhook {args.name!r}: {tried.error}")
    raise Refused(f"the receiver of webhook {args.name!r} answered HTTP {tried.status}: {tried.body}")

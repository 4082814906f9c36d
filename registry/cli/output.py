"""What the command handlers share: how a failure, a plan and a change are printed, and the model
and registry a command works on."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from registry import validate
from registry.config import Settings, redact
from registry.errors import Refused
from registry.ledger import Change
from registry.plan import Plan
from registry.tables import escaped

Handler = Callable[[argparse.Namespace, Settings], int]  # a command's function: its exit code


def fail(message: str) -> None:
    secret = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    print(f"error: {escaped(redact(message, (secret,)), one_line=True)}", file=sys.stderr)


def model_of(args: argparse.Namespace, settings: Settings) -> str:
    given = getattr(args, "model", None)
    return validate.model_name(settings.model_name if given is None else given)


def registry_of(settings: Settings) -> Any:
    from registry.client import Registry

    return Registry(settings, notify=lambda message: print(message, file=sys.stderr, flush=True))


def report(plan: Plan, nothing: str, dry_run: bool) -> int:
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
        fail(plan.refusal)
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

"""Promotion across environments: copy a version into another registered model (`dev.iris_clf` version 3
→ `prod.iris_clf`), on the same server or on another MLflow server.

- Same server: the copy is registered with `models:/SOURCE/N` as its source, the request
  `MlflowClient.copy_model_version` sends, with our tags in that same request.
- Another server: the version's artifacts (MLmodel, signature, input example, pinned requirements) are
  downloaded as they are and logged there as a new logged model of a new run (carrying the source
  run's metrics), which is then registered.

The copy is made at most once: it carries a promotion id derived from the source server, model and
version and the target model, and the target model is searched for that id, inside the target's
lock, before anything is copied (a retry finds the copy and only finishes what is left). It carries
lineage tags (source server without credentials, model, version, run id, the source ledger's last
seq), and the promotion is a ledger event on both sides. Gates run before the copy, against the
target's champion (its Production versions and the holders of PROD_ALIAS and the alias to move), on
the source's artifacts; `--to-alias` moves an alias of the target onto the copy.

MLflow keeps one tracking URI and one set of credentials per process, so with two servers the
process-wide settings are pointed at each server in turn (`_use`), never both at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from registry import gates, ledger, roles
from registry.client import ModelState, Registry, Version
from registry.config import redact_uri
from registry.connection import configure_mlflow
from registry.errors import BadInput, NotFound, Refused, RegistryError
from registry.gates import Check
from registry.ledger import Change
from registry.plan import Plan, alias_changes, guarded, protection, recheck, require_reason, stage_aliases
from registry.promote import carry_out
from registry.roles import Roles
from registry.versions import figure

PROMOTION_TAG = "registry.promotion_id"
SOURCE_TAG = "registry.source."  # prefix of the lineage tags: server, model, version, run_id, ledger_seq
NEW = 0  # the copy's number in a plan made before it exists (MLflow numbers versions from 1)


@dataclasses.dataclass(frozen=True)
class Promotion:
    """What `promote` did (or, for a dry run, would do)."""

    source: str  # "iris_clf version 3" (and the server, across servers)
    target: str  # "prod.iris_clf" (and the server, across servers)
    copy: int | None  # the copy's version number; None: not made (a dry run)
    made: bool  # this command made the copy; False: it was there from an earlier run, or not made
    plan: Plan  # the ledger changes on the target (the copy, alias moves) and the gates


class CopyCandidate(gates.Candidate):
    """The version to copy, gated as a version of the target model (compared with the target's
    champion) but loaded from the source: the artifacts the copy will have."""

    def __init__(self, target: Registry, to_model: str, origin: gates.Candidate, number: int) -> None:
        super().__init__(target, to_model, number)
        self.origin = origin

    def _load(self) -> Check:
        check = self.origin.load_check()
        self.loaded = self.origin.loaded
        named = f"{self.origin.model} version {self.origin.number}"
        return Check(
            check.gate, check.passed, check.detail.replace(f"version {self.origin.number}", named, 1)
        )


def promotion_id(source: Registry, model: str, number: int, to_model: str) -> str:
    """The id of copying version `number` of `model` (on `source`'s server) into `to_model`: the same on
    every retry. The target server is not in it: the id is searched for on the target itself."""
    key = "\n".join((redact_uri(source.settings.tracking_uri), model, str(number), to_model))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class Copying:
    """What the target needs to make the copy."""

    origin: Version  # the source version
    source_model: str
    source_ref: str  # `models:/MODEL/N` (and the server, across servers), for the ledgers
    pid: str  # the promotion id
    tags: dict[str, str]  # the copy's tags: the source version's, lineage, the promotion id
    across: bool  # the target is another server
    folder: str | None  # across servers: the source's artifacts, downloaded (None: not downloaded)
    metrics: dict[str, float]  # across servers: the source run's metrics, for the copy's run


def promote(
    source: Registry,
    model: str,
    target: Registry,
    to_model: str,
    *,
    number: int | None = None,
    alias: str | None = None,
    to_alias: str | None = None,
    reason: str = "",
    force: bool = False,
    dry_run: bool = False,
) -> Promotion:
    """Copy version `number` (or the one `alias` points at) of `model` into `to_model` on `target` (the
    same Registry object for the same server), gated; move `to_alias` onto the copy. With `dry_run`
    nothing is written, on either side."""
    require_reason(force, reason)
    _refuse_role_alias(target, to_alias)
    across = source is not target
    if not across and to_model == model:
        raise BadInput(f"--to-model {to_model!r} is the model itself; name another registered model")
    with _each_side(source, target, across) as use, tempfile.TemporaryDirectory(prefix="promote-") as scratch:
        origin = _source_version(source, model, number, alias)
        pid = promotion_id(source, model, origin.number, to_model)
        source_events = ledger.events(source, model)
        candidate = gates.Candidate(source, model, origin.number)
        candidate.load_check()  # before the lock: loading takes seconds
        # Everything the target side needs from the source is read now, on the source's credentials.
        metrics = source.run_metrics(origin.run_id) if across and origin.run_id else {}
        figure(source, origin, source.settings.gate_metric)
        copying = Copying(
            origin,
            model,
            _ref(model, origin.number, source if across else None),
            pid,
            _lineage(source, model, origin, pid, source_events),
            across,
            None,
            metrics,
        )
        if not dry_run:
            use(target)
            described = f"Copies of {model}, promoted by the registry tool"
            target.create_model(to_model, description=described, tags={})
            if across and not target.search_tagged(to_model, {PROMOTION_TAG: pid}):
                use(source)  # downloaded before the target's lock: it takes seconds
                folder = source.download_version(model, origin.number, scratch)
                copying = dataclasses.replace(copying, folder=folder)
        use(target)
        gated = CopyCandidate(target, to_model, candidate, NEW)
        plan, copy, made = _on_target(
            target, to_model, gated, copying, runs=source, to_alias=to_alias, reason=reason, force=force,
            dry_run=dry_run,
        )  # fmt: skip
        use(source)
        if copy is not None and not dry_run:
            target_ref = _ref(to_model, copy, target if across else None)
            _record_source(source, model, origin.number, target_ref, source_events, reason)
    where = f" on {redact_uri(target.settings.tracking_uri)}" if across else ""
    origin_where = f" on {redact_uri(source.settings.tracking_uri)}" if across else ""
    return Promotion(f"{model} version {origin.number}{origin_where}", to_model + where, copy, made, plan)


def _on_target(
    target: Registry,
    to_model: str,
    candidate: CopyCandidate,
    copying: Copying,
    *,
    runs: Registry,
    to_alias: str | None,
    reason: str,
    force: bool,
    dry_run: bool,
) -> tuple[Plan, int | None, bool]:
    """Plan, gate, copy and record on the target under its lock: (plan, the copy's number, made now)."""
    source_ref = copying.source_ref
    with guarded(target, to_model, f"promote {source_ref}", dry_run):
        read = _target_state(target, to_model, dry_run)
        state = read or ModelState(aliases={}, latest=[], tags={})
        found = sorted(target.search_tagged(to_model, {PROMOTION_TAG: copying.pid}), key=lambda v: v.number)
        copy = found[0].number if found else None
        candidate.number = copy or NEW
        lifecycle = _target_roles(target, to_model, read)
        holders = [] if read is None else lifecycle.holders(target, to_model, state)
        champions = _champions(target, to_model, state, holders, to_alias)
        planned = dataclasses.replace(copying.origin, number=candidate.number)
        checks = gates.check(target, candidate, planned, champions, metric=True, runs=runs)
        label = f"the copy of {source_ref}"
        checks = [Check(c.gate, c.passed, re.sub(r"\bversion 0\b", label, c.detail)) for c in checks]
        checks += _alias_rules(target, to_alias)
        recorded = copy is not None and _recorded(target, to_model, copy)
        plan = Plan(_changes(state, copy or NEW, source_ref, to_alias, recorded), checks)
        if dry_run:
            return plan, copy, False
        attempt = Change("refused", None, from_=source_ref, to=f"models:/{to_model}")
        if plan.refusal and not force:
            carry_out(target, to_model, plan, attempt, reason=reason, force=False)  # records it, raises
        ledger.ensure(target, to_model)  # first: a copy interrupted before its event is one doctor names
        made = copy is None
        if copy is None:
            recheck(target, to_model, state)
            copy = _register(target, to_model, copying)
        plan = Plan(_changes(state, copy, source_ref, to_alias, recorded), checks)
        carry_out(target, to_model, plan, attempt, reason=reason, force=force, lifecycle=lifecycle)
    return plan, copy, made


def _target_roles(target: Registry, to_model: str, read: ModelState | None) -> Roles:
    """The target model's lifecycle (Refused when the target's LIFECYCLE disagrees with it); a model
    without one takes LIFECYCLE, claimed with the copy's ledger entry."""
    if read is None:
        return roles.for_mode(target.settings.lifecycle, target.settings, tagged=False)
    return roles.of(target, to_model, read)


def _register(target: Registry, to_model: str, copying: Copying) -> int:
    """Make the copy, tagged with its promotion id in the same request (see `Registry.register_once`):
    on the same server from `models:/SOURCE/N`, as `copy_model_version` does; across servers from the
    downloaded artifacts, logged there first."""
    origin = copying.origin
    if copying.across and copying.folder is None:  # it was there before the lock, and is gone now
        raise Refused(
            f"the copy of {copying.source_ref} in {to_model!r} went away while this command ran; run it again"
        )
    if copying.folder is None:
        source, model_id = f"models:/{copying.source_model}/{origin.number}", None
    else:
        run_name = f"promoted {copying.source_ref}"
        model_id, _ = target.upload_model(copying.folder, run_name, copying.tags, copying.metrics)
        source = f"models:/{model_id}"
    target.fence()  # the upload took seconds: prove the lock is still ours before registering
    return target.register_once(to_model, source, model_id, copying.tags).number


def _changes(
    state: ModelState, copy: int, source_ref: str, to_alias: str | None, recorded: bool
) -> list[Change]:
    """The ledger changes of the promotion: the copy (unless an earlier run recorded it), alias moves."""
    changes = [] if recorded else [Change("promote", copy, from_=source_ref)]
    if to_alias is not None:
        changes += alias_changes(state.aliases, {to_alias: copy})
    return changes


def _refuse_role_alias(target: Registry, to_alias: str | None) -> None:
    """With LIFECYCLE=aliases a role alias is the role itself: it moves only by `stage` or `rollback`
    (gated, the old holder retired), never onto a copy, even with --force."""
    roles_of = {alias: role for role, alias in stage_aliases(target.settings).items()}
    if target.settings.lifecycle == "aliases" and to_alias in roles_of:
        role = roles_of[to_alias]
        raise Refused(
            f"alias {to_alias!r} holds a role (LIFECYCLE=aliases): promote without --to-alias, then "
            f"`stage --version N --stage {role}` on the target model"
        )


def _alias_rules(target: Registry, to_alias: str | None) -> list[Check]:
    """Protected aliases move only with --force; so does an alias that follows a stage (PROD_ALIAS),
    which must stay on its stage's version: make the copy Production on the target instead."""
    checks = protection(target, to_alias)
    if not checks and to_alias in stage_aliases(target.settings).values():
        checks.append(
            Check(
                "protected",
                False,
                f"alias {to_alias!r} holds or follows a role (PROD_ALIAS / STAGING_ALIAS): it moves "
                "with `stage --stage Production` on the target model",
            )
        )
    return checks


def _champions(
    target: Registry, to_model: str, state: ModelState, holders: list[Version], to_alias: str | None
) -> list[Version]:
    """The target's champion(s): its Production versions and the holders of PROD_ALIAS and of the alias
    about to move."""
    champions = {v.number: v for v in holders if v.stage == "Production"}
    for name in {target.settings.prod_alias, to_alias} - {None, ""}:
        number = state.aliases.get(str(name))
        if number is not None and number not in champions:
            champions[number] = state.version(number) or target.get_version(to_model, number)
    return list(champions.values())


def _target_state(target: Registry, to_model: str, dry_run: bool) -> ModelState | None:
    """The target model as one read shows it; None for a dry run into a model not made yet."""
    try:
        return target.model_state(to_model)
    except NotFound:
        if not dry_run:
            raise
        return None


def _recorded(target: Registry, to_model: str, copy: int) -> bool:
    """True when the target's ledger has the promotion event of version `copy`."""
    return any(e.action == "promote" and e.version == copy for e in ledger.events(target, to_model))


def _source_version(source: Registry, model: str, number: int | None, alias: str | None) -> Version:
    if number is None:
        if alias is None:
            raise BadInput("name the version to promote: --version N or --alias A")
        number = source.version_by_alias(model, alias)
    version = source.get_version(model, number)
    if version.status != "READY":
        raise BadInput(f"version {number} of model {model!r} is {version.status}, not READY; wait for it")
    return version


def _lineage(
    source: Registry, model: str, origin: Version, pid: str, source_events: list[ledger.Event]
) -> dict[str, str]:
    """The copy's tags: the source version's own (not this tool's bookkeeping), the promotion id, and
    where it came from (the server without credentials)."""
    tags = {key: value for key, value in origin.tags.items() if not key.startswith("registry.")}
    lineage = {
        "server": redact_uri(source.settings.tracking_uri),
        "model": model,
        "version": str(origin.number),
        "run_id": origin.run_id,
        "ledger_seq": str(source_events[-1].seq) if source_events else "",
    }
    tags.update({SOURCE_TAG + key: value for key, value in lineage.items() if value})
    tags[PROMOTION_TAG] = pid
    return tags


def _ref(model: str, number: int, across: Registry | None) -> str:
    """`models:/MODEL/N`, and the server when it is another one than the ledger's own."""
    return f"models:/{model}/{number}" + (f" on {redact_uri(across.settings.tracking_uri)}" if across else "")


def _record_source(
    source: Registry, model: str, number: int, target_ref: str, events: list[ledger.Event], reason: str
) -> None:
    """The promotion in the source's ledger, unless an earlier run recorded it; a failure only warns:
    the copy is made and recorded on the target."""
    if any(e.action == "promote" and e.version == number and e.to == target_ref for e in events):
        return
    try:
        ledger.ensure(source, model)
        ledger.record(source, model, [Change("promote", number, to=target_ref)], reason)
    except RegistryError as exc:
        source.notify(f"warning: promoted, but the ledger of {model!r} does not say so ({exc})")


@contextmanager
def _each_side(source: Registry, target: Registry, across: bool) -> Iterator[Callable[[Registry], None]]:
    """A function pointing MLflow's process-wide settings at one server; back at the source at the end."""

    def use(registry: Registry) -> None:
        if across:
            _use(registry)

    try:
        use(source)
        yield use
    finally:
        use(source)


def _use(registry: Registry) -> None:
    """Point MLflow's process-wide tracking URI and credentials at `registry`'s server only: the other
    server's credentials are removed, so they never reach this one."""
    import mlflow

    settings = registry.settings
    configure_mlflow(settings)
    for key, value in (
        ("MLFLOW_TRACKING_USERNAME", settings.username),
        ("MLFLOW_TRACKING_PASSWORD", settings.password),
    ):
        if not value:
            os.environ.pop(key, None)
    mlflow.set_tracking_uri(settings.tracking_uri)

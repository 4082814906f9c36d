"""Events: MLflow webhooks that tell subscribers about every change, and checking what they deliver.

Every command of this tool writes one new version of `<model>.ledger` whose tag `event` holds the
command's JSON (`registry.ledger.event_tags`). MLflow announces each new version as a
`model_version.created` event carrying the version's tags, so a webhook subscribed to that event
receives every change the tool makes, with no request of ours beyond the ledger write. MLflow's native
events (an alias moved in the UI, a version registered by a script) arrive through the same webhook.

Deliveries are signed the way MLflow signs them (Standard Webhooks): HMAC-SHA256 over
`<delivery id>.<timestamp>.<body>` with the webhook's secret, base64, as `v1,<signature>` in
`X-MLflow-Signature`; `verify` checks that and the timestamp, `Deliveries` refuses a delivery id seen
before.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from registry.client import Registry
from registry.errors import BadInput, NotFound, Refused, RegistryError, Unreachable
from registry.ledger import EVENT_TAG, LEDGER_SUFFIX
from registry.versions import utc_iso

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"
TOLERANCE_SECONDS = 300  # a delivery older or newer than this is refused (Standard Webhooks' 5 minutes)
REGISTRY_EVENTS = (
    "model_version.created",  # this tool's changes (versions of <model>.ledger), and new versions
    "model_version_alias.created",
    "model_version_alias.deleted",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "registered_model.created",
)
ALIAS_EVENTS = ("model_version_alias.created", "model_version_alias.deleted")
DEFAULT_NAME = "registry-events"
NAME_PATTERN = re.compile(r"[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?", re.IGNORECASE)  # MLflow's rule
PAGE_SIZE = 1000


class Forged(Refused):
    """A delivery whose signature, timestamp or id does not hold up: refused, nothing done."""


@dataclasses.dataclass(frozen=True)
class Hook:
    """A webhook on the server."""

    id: str
    name: str
    url: str
    events: tuple[str, ...]
    status: str
    created: str

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "events": list(self.events)}


@dataclasses.dataclass(frozen=True)
class Added:
    """What `add` did: the hook, whether it was new, and the secret when this tool made one up."""

    hook: Hook
    created: bool
    secret: str | None


@dataclasses.dataclass(frozen=True)
class Tried:
    """What the server's test delivery of a hook got back."""

    success: bool
    status: int | None
    body: str
    error: str


def hook_name(text: str) -> str:
    """A webhook name MLflow accepts (checked before any request)."""
    if not NAME_PATTERN.fullmatch(text):
        raise BadInput(
            f"hook name {text!r} is not usable; use 1 to 63 letters, digits, ., _ or -, starting and "
            "ending with a letter or digit"
        )
    return text


def hook_url(text: str) -> str:
    """An http(s) URL with a host (the server has its own, stricter rules: see `add`)."""
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"hook URL {text!r} is not an http(s) address; use such as https://host/path")
    return text.strip()


def event_names(text: str) -> tuple[str, ...]:
    """Comma-separated webhook events, each one MLflow's model registry knows."""
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in REGISTRY_EVENTS]
    if not names or unknown:
        raise BadInput(f"unknown event {', '.join(unknown) or '(none)'}; use: {', '.join(REGISTRY_EVENTS)}")
    return names


def _hook(webhook: Any) -> Hook:
    return Hook(
        id=str(webhook.webhook_id),
        name=str(webhook.name),
        url=str(webhook.url),
        events=tuple(str(event) for event in webhook.events),
        status=str(webhook.status),
        created=utc_iso(int(webhook.creation_timestamp or 0)),
    )


def list_hooks(registry: Registry) -> list[Hook]:
    """Every webhook on the server, newest first."""
    found: list[Hook] = []
    token: str | None = None
    with _webhook_errors(registry, "the webhooks"):
        while True:
            page = registry._client.list_webhooks(max_results=PAGE_SIZE, page_token=token)
            found += [_hook(webhook) for webhook in page]
            token = page.token or None
            if not token:
                return found


def find(registry: Registry, name: str) -> Hook | None:
    """The webhook named `name`, or None (MLflow does not keep names unique: the newest wins)."""
    return next((hook for hook in list_hooks(registry) if hook.name == name), None)


def add(
    registry: Registry,
    url: str,
    name: str = DEFAULT_NAME,
    secret: str | None = None,
    events: tuple[str, ...] = REGISTRY_EVENTS,
) -> Added:
    """Subscribe `url` to `events` as webhook `name`; the same name again updates it (its URL, its
    events, and its secret when one is given). A new hook without a secret gets a random one."""
    existing = find(registry, name)
    made_up = None
    if existing is None and not secret:
        secret = made_up = secrets.token_urlsafe(24)
    with _webhook_errors(registry, f"webhook {name!r} for {url}", url):
        if existing is None:
            created = registry._client.create_webhook(name=name, url=url, events=list(events), secret=secret)
            return Added(_hook(created), True, made_up)
        updated = registry._client.update_webhook(
            existing.id, url=url, events=list(events), secret=secret or None, status="ACTIVE"
        )
    return Added(_hook(updated), False, None)


def remove(registry: Registry, name: str) -> Hook:
    """Delete webhook `name` (NotFound when there is none)."""
    hook = find(registry, name)
    if hook is None:
        raise NotFound(f"no webhook named {name!r} on {registry.settings.tracking_uri}; see `hooks list`")
    with _webhook_errors(registry, f"webhook {name!r}"):
        registry._client.delete_webhook(hook.id)
    return hook


def try_hook(registry: Registry, name: str, event: str | None = None) -> Tried:
    """Have the server deliver MLflow's example payload of `event` (default: the hook's first event)."""
    hook = find(registry, name)
    if hook is None:
        raise NotFound(f"no webhook named {name!r} on {registry.settings.tracking_uri}; see `hooks list`")
    with _webhook_errors(registry, f"webhook {name!r}"):
        result = registry._client.test_webhook(hook.id, event=event)
    return Tried(
        success=bool(result.success),
        status=result.response_status,
        body=(result.response_body or "")[:500],
        error=result.error_message or "",
    )


@contextlib.contextmanager
def _webhook_errors(registry: Registry, subject: str, url: str = "") -> Any:
    """MLflow's errors about webhooks, with what a server that refuses a URL refuses and why."""
    try:
        with registry.errors(subject):
            yield
    except BadInput as exc:
        text = str(exc)
        server = registry.settings.tracking_uri
        if "scheme" in text or "non-public" in text or "resolve" in text:
            raise BadInput(
                f"the MLflow server at {server} refuses {url or 'this URL'}: {text.split(': ', 1)[-1]}. "
                "By default MLflow delivers only to https URLs on public addresses; the servers this "
                "project starts (`invoke up`, local and Compose) also allow http and private addresses "
                "(MLFLOW_WEBHOOK_ALLOWED_SCHEMES, MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS: see docs/serving.md)"
            ) from None
        raise
    except (NotFound, Unreachable):
        raise
    except RegistryError as exc:
        raise RegistryError(
            f"{exc}; webhooks need MLflow >= 3.3 with a database backend store (not a file store)"
        ) from None


def unsubscribe(registry: Registry, name: str) -> bool:
    """Delete webhook `name` if it exists; True when one was deleted."""
    try:
        remove(registry, name)
    except NotFound:
        return False
    return True


# ------------------------------------------------------------------ receiving


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The `X-MLflow-Signature` MLflow sends: `v1,` + base64(HMAC-SHA256(id.timestamp.body))."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    tolerance: float = TOLERANCE_SECONDS,
) -> str:
    """The delivery id of a delivery signed with `secret` within `tolerance` seconds of `now`;
    Forged otherwise. `headers` must look keys up case-insensitively (as HTTP libraries do), or be
    given with lower-case keys."""
    delivery = _header(headers, DELIVERY_HEADER)
    stamp = _header(headers, TIMESTAMP_HEADER)
    signatures = _header(headers, SIGNATURE_HEADER).split()
    if not (delivery and stamp and signatures):
        raise Forged(
            "unsigned delivery: the X-MLflow-Delivery-Id, -Timestamp or -Signature header is missing"
        )
    expected = sign(secret, delivery, stamp, body)
    if not any(hmac.compare_digest(expected, given) for given in signatures):
        raise Forged("bad signature: the delivery was not signed with this hook's secret")
    if not stamp.isdigit() or abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        raise Forged(f"stale delivery: its timestamp is more than {tolerance:g} s from now")
    return delivery


def _header(headers: Mapping[str, str], name: str) -> str:
    return str(headers.get(name) or headers.get(name.lower()) or "").strip()


class Deliveries:
    """Delivery ids already accepted, kept as files in `folder` so that every worker process sees
    them; ids are forgotten after twice the timestamp tolerance (older ones fail `verify` anyway)."""

    def __init__(self, folder: Path, keep_seconds: float = 2 * TOLERANCE_SECONDS) -> None:
        self.folder = folder
        self.keep_seconds = keep_seconds
        folder.mkdir(parents=True, exist_ok=True)
        self._pruned = time.monotonic()

    def first_time(self, delivery_id: str) -> bool:
        """True the first time `delivery_id` is seen here, False for a replay."""
        name = hashlib.sha256(delivery_id.encode()).hexdigest()
        try:
            os.close(os.open(self.folder / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return False
        if time.monotonic() - self._pruned > self.keep_seconds / 4:
            self._prune()
        return True

    def _prune(self) -> None:
        self._pruned = time.monotonic()
        horizon = time.time() - self.keep_seconds
        for path in self.folder.iterdir():
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < horizon:
                    path.unlink()


def ledger_events(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The changes a delivered `model_version.created` payload of a `<model>.ledger` version holds,
    one flat dict each (seq, model, version, action, from, to, alias, actor, reason, result); empty
    for any other payload."""
    data = payload.get("data")
    if payload.get("entity") != "model_version" or payload.get("action") != "created":
        return []
    if not isinstance(data, dict) or not str(data.get("name", "")).endswith(LEDGER_SUFFIX):
        return []
    try:
        fields = json.loads((data.get("tags") or {}).get(EVENT_TAG, ""))
        seq = int(data["version"])
    except (ValueError, TypeError, KeyError):
        return []
    changes = fields.get("changes") if isinstance(fields, dict) else None
    if not isinstance(changes, list):
        return []
    head = {key: fields.get(key) for key in ("model", "actor", "reason", "result")}
    return [
        {"seq": seq, **head, **{key: change.get(key) for key in ("action", "version", "from", "to", "alias")}}
        for change in changes
        if isinstance(change, dict)
    ]

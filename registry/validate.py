"""Checks on user input that need no server (and no mlflow import): they raise BadInput."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from registry.errors import BadInput

STAGES = ("None", "Staging", "Production", "Archived")
# Stages that one version holds at a time: MLflow archives the holders when another moves in (it
# accepts archive_existing_versions only for these), mirroring keeps an alias on them, doctor checks them.
HELD_STAGES = ("Staging", "Production")
ALIAS_PATTERN = re.compile(r"[\w-]+")  # always fullmatch: `$` would let a trailing newline through
MODEL_PATTERN = re.compile(r"[A-Za-z0-9_][\w.-]*")
RESERVED_ALIAS = re.compile(r"(latest|v\d+)", re.IGNORECASE)
COMPANION_SUFFIXES = (".ledger", ".lock")
MAX_VERSION = 2**31 - 1  # MLflow keeps version numbers in a 32-bit integer column
MAX_NAME = 255
MAX_REASON = 1000


def version_number(text: str) -> int:
    """A version number: a whole number from 1 to MAX_VERSION."""
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_VERSION:
        raise BadInput(f"version {text!r} is not a version number; use a whole number such as 1")
    return int(value)


def whole(name: str, low: int, high: int) -> Callable[[str], int]:
    """A parser of `--name`: a whole number from `low` to `high`."""

    def parse(text: str) -> int:
        value = text.strip()
        digits = value[1:] if value.startswith("-") else value
        if not (digits.isascii() and digits.isdigit()) or not low <= int(value) <= high:
            raise BadInput(f"--{name} {text!r} is not a whole number from {low} to {high:,}")
        return int(value)

    return parse


def positive(name: str) -> Callable[[str], float]:
    """A parser of `--name`: a finite number greater than 0."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise BadInput(f"--{name} {text!r} is not a number greater than 0, such as 1.0")
        return value

    return parse


def stage(text: str) -> str:
    """A stage name, case-insensitive, returned as MLflow spells it."""
    for name in STAGES:
        if text.strip().lower() == name.lower():
            return name
    raise BadInput(f"stage {text!r} is unknown; use one of: {', '.join(STAGES)}")


def lifecycle(text: str) -> str:
    """A lifecycle: stages or aliases (any case)."""
    value = text.strip().lower()
    if value not in ("stages", "aliases"):
        raise BadInput(f"lifecycle {text!r} is unknown; use stages or aliases")
    return value


def alias(text: str) -> str:
    """An alias name MLflow accepts and does not reserve."""
    if not text:
        raise BadInput("alias name is empty; use letters, digits, _ or -, such as prod")
    if len(text) > MAX_NAME:
        raise BadInput(f"alias name is {len(text)} characters long; use at most {MAX_NAME}")
    if not ALIAS_PATTERN.fullmatch(text):
        raise BadInput(f"alias {text!r} may only hold letters, digits, _ and -, such as prod")
    if RESERVED_ALIAS.fullmatch(text):
        raise BadInput(f"alias {text!r} is reserved by MLflow (latest, v<number>); pick another name")
    return text


def model_name(text: str) -> str:
    """A registered model name this tool can query safely (and not one of its ledgers)."""
    if not MODEL_PATTERN.fullmatch(text) or len(text) > MAX_NAME:
        raise BadInput(
            f"model name {text!r} is not usable; use letters, digits, _, - and ., such as iris_clf"
        )
    if text.endswith(COMPANION_SUFFIXES):
        raise BadInput(
            f"model name {text!r} names one of this tool's companion models (its ledger or lock); "
            "use the model it belongs to"
        )
    return text


def reason(text: str) -> str:
    """A free-text reason for the ledger."""
    if len(text) > MAX_REASON:
        raise BadInput(f"reason is {len(text)} characters long; use at most {MAX_REASON}")
    return text.strip()


def models_uri(text: str) -> tuple[str, str]:
    """Split `models:/name/1`, `models:/name/Production` or `models:/name@alias`.

    Returns (model, reference) where reference is `@alias`, a version number, `latest` or a stage.
    """
    uri = text.strip()
    if not uri.startswith("models:/"):
        raise BadInput(
            f"URI {text!r} is not a registry URI; use models:/NAME/1, "
            "models:/NAME/Production or models:/NAME@ALIAS"
        )
    rest = uri[len("models:/") :].strip("/")
    if "@" in rest and "/" not in rest:
        name, alias_name = rest.split("@", 1)
        return model_name(name), "@" + alias(alias_name)
    name, sep, ref = rest.partition("/")
    if not sep or not ref or "/" in ref:
        raise BadInput(f"URI {text!r} names no version, stage or alias; use models:/NAME/1")
    if ref.isdigit():
        return model_name(name), str(version_number(ref))
    if ref.lower() == "latest":
        return model_name(name), "latest"
    return model_name(name), stage(ref)

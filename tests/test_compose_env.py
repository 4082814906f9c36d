"""compose.yaml's trainer environment is exactly what registry/config.py declares for the container."""

from __future__ import annotations

from pathlib import Path

import yaml

from registry.config import compose_environment

ROOT = Path(__file__).resolve().parent.parent


def differences(found: dict[str, str], wanted: dict[str, str]) -> str:
    """What to change in `found` to get `wanted`, as lines to paste and keys to delete."""
    fixes = [f"      {key}: {value}" for key, value in wanted.items() if found.get(key) != value]
    extra = [key for key in found if key not in wanted]
    text = "compose.yaml's trainer `environment:` differs from the settings in registry/config.py"
    if fixes:
        text += "; add (or correct) these lines:\n" + "\n".join(fixes)
    if extra:
        text += f"\nremove: {', '.join(extra)}"
    return text


def test_the_trainer_environment_is_the_declared_settings() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    found = compose["services"]["trainer"]["environment"]
    assert isinstance(found, dict), "write the trainer's `environment:` as a mapping (KEY: value)"
    wanted = {"MLFLOW_TRACKING_URI": "http://mlflow:5000", **compose_environment()}
    assert found == wanted, differences(found, wanted)


def test_the_message_names_the_lines_to_add_and_the_keys_to_remove() -> None:
    message = differences({"A": "${A:-1}", "OLD": "x", "B": "${B:-0}"}, {"A": "${A:-1}", "B": "${B:-2}"})
    assert "add (or correct) these lines:\n      B: ${B:-2}\nremove: OLD" in message
    assert "A:" not in message

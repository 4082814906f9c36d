"""Follow an alias: read where it points, load that version beside the one being served, check it on
its own input example, then swap, so that `serve` always answers with the version the alias names.

A `Follower` runs one background thread. It reads the alias every `poll_seconds`, or at once when
nudged (a verified webhook delivery). The swap is the assignment of one attribute: a request reads
`follower.current` once and keeps that model until it is answered, so requests in flight finish on
the old model and nothing waits for a lock; the old model is released with its last request.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from registry.config import Settings
from registry.errors import NotFound, Refused, RegistryError, Unreachable, first_line
from registry.gates import prediction_error
from registry.versions import utc_iso

log = logging.getLogger("registry.serve")


@dataclasses.dataclass(frozen=True)
class Loaded:
    """A version in memory, checked on its input example and ready to answer."""

    version: int
    run_id: str
    model: Any  # mlflow.pyfunc.PyFuncModel
    input_schema: Any
    loaded_at: str


class Follower:
    """Keeps `current` on the version `alias` of `model` points at (see the module's docstring)."""

    def __init__(
        self, settings: Settings, model: str, alias: str, folder: Path, nudge_file: Path | None = None
    ) -> None:
        self.settings = settings
        self.model = model
        self.alias = alias
        self.folder = folder  # downloaded versions, one sub-folder each
        self.nudge_file = nudge_file  # shared by worker processes: a nudge to one reaches all
        self.current: Loaded | None = None
        self.last_error: str | None = None
        self.alias_version: int | None = None  # where the alias pointed at the last read
        self.checked_at: str | None = None  # when the registry last answered
        self.events = "off"  # what `serve` subscribed (set by serve.py)
        self._refused: tuple[int, str] | None = None  # a version that failed its check, and why
        self._kind: str | None = None  # the kind of the error last logged
        self._registry: Any = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nudged_at = self._nudge_stamp()

    # ---------------------------------------------------------------- the thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="follow-alias", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def nudge(self) -> None:
        """Read the alias now (a verified event said it moved); other worker processes too."""
        if self.nudge_file is not None:
            self.nudge_file.write_text(str(time.time_ns()))
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception as exc:  # the thread must outlive anything a model or MLflow raises
                self._report(f"unexpected {type(exc).__name__}: {first_line(exc)}")
            self._wait(self.settings.serve_poll_seconds)

    def _wait(self, seconds: float) -> None:
        """Sleep `seconds`, or less when nudged here or through the shared nudge file."""
        deadline = time.monotonic() + seconds
        step = seconds if self.nudge_file is None else min(seconds, 0.1)
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._wake.wait(min(step, left)):
                break
            stamp = self._nudge_stamp()
            if stamp != self._nudged_at:
                self._nudged_at = stamp
                break
        self._wake.clear()

    def _nudge_stamp(self) -> float:
        try:
            return self.nudge_file.stat().st_mtime if self.nudge_file is not None else 0.0
        except OSError:
            return 0.0

    # ---------------------------------------------------------------- one check

    def check(self) -> None:
        """Read the alias; load, check and swap to the version it names when that is new."""
        subject = f"{self.model}@{self.alias}"
        try:
            number = self.registry().version_by_alias(self.model, self.alias)
        except NotFound:
            self.alias_version = None
            self._stamp()
            self._report(f"alias {self.alias!r} of model {self.model!r} is not set{self._serving()}")
            return
        except RegistryError as exc:  # down, refused, broken: keep serving, try again later
            self._report(f"cannot read {subject}: {first_line(exc)}{self._serving()}; retrying", "read")
            return
        self.alias_version = number
        self._stamp()
        if self.current is not None and number == self.current.version:
            self._refused = None
            self._report(None)
            return
        if self._refused is not None and number == self._refused[0]:  # not retried while the alias names it
            self._report(self._refused[1])
            return
        try:
            loaded = self.load(number)
        except Refused as exc:
            self._refused = (number, f"not switching to version {number}: {exc}{self._serving()}")
            self._report(self._refused[1])
            return
        except RegistryError as exc:  # the server went away while loading: try again
            self._report(f"cannot load version {number} of {subject}: {first_line(exc)}; retrying", "load")
            return
        self._swap(loaded)

    def registry(self) -> Any:
        if self._registry is None:
            from registry.client import Registry

            self._registry = Registry(self.settings)
        return self._registry

    def load(self, number: int) -> Loaded:
        """Version `number` loaded and checked on its stored input example; Refused when either fails,
        Unreachable when the server is gone."""
        import mlflow.pyfunc

        registry = self.registry()
        subject = f"version {number} of model {self.model!r}"
        run_id = registry.get_version(self.model, number).run_id
        target = self.folder / str(number)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        try:
            with registry.errors(subject):
                model = mlflow.pyfunc.load_model(f"models:/{self.model}/{number}", dst_path=str(target))
        except Unreachable:
            raise
        except Exception as exc:  # a missing artifact, a model's own code and pickles can raise anything
            raise Refused(f"{subject} cannot be loaded: {first_line(exc)}") from None
        example = model.input_example
        if example is None:
            raise Refused(f"{subject} has no stored input example to check it on")
        try:
            model.predict(example)
        except Exception as exc:
            raise Refused(f"{subject} fails on its own input example: {prediction_error(exc)}") from None
        schema = model.metadata.get_input_schema()
        return Loaded(number, run_id, model, schema, utc_iso(int(time.time() * 1000)))

    def _swap(self, loaded: Loaded) -> None:
        before = self.current
        self.current = loaded  # one assignment: every request after this line gets the new version
        self._refused = None
        self._kind = self.last_error = None
        if before is None:
            log.info("serving version %s of %s@%s", loaded.version, self.model, self.alias)
        else:
            log.info(
                "switched %s@%s from version %s to %s", self.model, self.alias, before.version, loaded.version
            )
        kept = {str(loaded.version), str(before.version) if before else ""}
        for path in self.folder.iterdir() if self.folder.is_dir() else ():
            if path.name not in kept:  # the version before the previous one: no request holds it now
                shutil.rmtree(path, ignore_errors=True)

    def _stamp(self) -> None:
        self.checked_at = utc_iso(int(time.time() * 1000))

    def _serving(self) -> str:
        current = self.current
        return f"; still serving version {current.version}" if current else "; nothing to serve yet"

    def _report(self, error: str | None, kind: str | None = None) -> None:
        """Keep `error` for /model; log one line when a new kind of trouble starts (`kind`, default the
        error itself: a registry outage is one line however its messages vary), and one when it ends."""
        kind = kind or error
        if kind != self._kind:
            if error:
                log.warning("%s", error)
            elif self.last_error:
                log.info("%s@%s: back to normal, serving version %s", self.model, self.alias, self._version())
            self._kind = kind
        self.last_error = error

    def _version(self) -> int | None:
        current = self.current
        return current.version if current else None

    def state(self, current: Loaded | None) -> dict[str, Any]:
        """The body of GET /model, about `current` (the version the request's headers name)."""
        return {
            "model": self.model,
            "alias": self.alias,
            "version": current.version if current else None,
            "run_id": current.run_id if current else None,
            "loaded_at": current.loaded_at if current else None,
            "last_error": self.last_error,
            "alias_version": self.alias_version,
            "checked_at": self.checked_at,
            "events": self.events,
        }

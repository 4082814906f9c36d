"""The one place that talks to MLflow: wraps `MlflowClient`; `registry.connection` sets it up and
turns its errors into ours."""

from __future__ import annotations

import dataclasses
import time
import uuid
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from registry.config import Settings
from registry.connection import configure_mlflow, mlflow_errors, probe, translate
from registry.errors import (
    BadInput,
    NotFound,
    PermissionDenied,
    Refused,
    RegistryError,
    ServerFailed,
    Unreachable,
    first_line,
)

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

ACCURACY_TAG = "accuracy"
REGISTRATION_TAG = "registry.registration_id"


@dataclasses.dataclass(frozen=True)
class Version:
    """A model version as this tool sees it."""

    number: int
    stage: str
    status: str
    run_id: str
    created_ms: int
    tags: dict[str, str]
    updated_ms: int = 0

    @property
    def touched_ms(self) -> int:
        """When the server last stamped this version (created, or updated since)."""
        return max(self.created_ms, self.updated_ms)


@dataclasses.dataclass(frozen=True)
class ModelState:
    """A registered model as one read of it shows it (`Registry.model_state`): its aliases, the
    latest version of each stage, and its tags."""

    aliases: dict[str, int]
    latest: list[Version]
    tags: dict[str, str]

    def in_stage(self, stage: str) -> list[int]:
        return [version.number for version in self.latest if version.stage == stage]

    def version(self, number: int) -> Version | None:
        """Version `number` when it is the latest of its stage, else None (read it on its own)."""
        return next((version for version in self.latest if version.number == number), None)


def _version(mv: ModelVersion) -> Version:
    return Version(
        number=int(mv.version),
        stage=mv.current_stage or "None",
        status=mv.status or "READY",
        run_id=mv.run_id or "",
        created_ms=int(mv.creation_timestamp or 0),
        tags=dict(mv.tags or {}),
        updated_ms=int(mv.last_updated_timestamp or 0),
    )


class Registry:
    """Model registry operations on one server, each one request unless said otherwise."""

    def __init__(self, settings: Settings, notify: Callable[[str], None] | None = None) -> None:
        configure_mlflow(settings)
        probe(settings)
        from mlflow import MlflowClient

        self.settings = settings
        # Where progress worth a user's eye goes (such as waiting for the lock); silent by default.
        self.notify: Callable[[str], None] = notify or (lambda message: None)
        self._client: Any = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
        # Tags of each registered model as this object last read them (a read costs nothing extra).
        self.seen_tags: dict[str, dict[str, str]] = {}
        # Called around every change of the registry or the ledger (`written` after it): the lock's
        # proof that it is still held.
        self.fence: Callable[..., None] = lambda written=False: None
        self._run_metrics: dict[str, dict[str, float]] = {}  # run id -> its metrics, read once

    def errors(self, subject: str) -> Any:
        """Context manager translating MLflow errors about `subject`."""
        return mlflow_errors(self.settings, subject)

    def model_state(self, model: str) -> ModelState:
        """Aliases, latest version per stage and tags of `model` in one request (NotFound if missing).

        Read by a search on the exact name, not `get_registered_model`: for a get, the server loads
        every version of the model to find the latest of each stage (0.4 s for a 10,000-event
        ledger); its search finds them in one query (0.15 s), and the same for a small model.
        """
        with self.errors(f"model {model!r}"):
            found = self._client.search_registered_models(filter_string=f"name = '{model}'", max_results=1)
        if not found:
            raise NotFound(f"model {model!r} does not exist on {self.settings.tracking_uri}")
        registered = found[0]
        state = ModelState(
            aliases={alias: int(number) for alias, number in (registered.aliases or {}).items()},
            latest=[_version(mv) for mv in registered.latest_versions or []],
            tags=dict(registered.tags or {}),
        )
        self.seen_tags[model] = state.tags
        return state

    def aliases(self, model: str) -> dict[str, int]:
        """Alias → version map of `model` (NotFound if the model does not exist)."""
        return self.model_state(model).aliases

    def model_tags(self, model: str) -> dict[str, str]:
        """The tags of registered model `model` (NotFound if it does not exist)."""
        return self.model_state(model).tags

    def in_stage(self, model: str, stage: str) -> list[int]:
        """Versions of `model` in `stage` as MLflow reports them (the latest one per stage).

        One read of the model, which carries the latest version of each stage, where
        `get_latest_versions` costs MLflow's client two requests.
        """
        return self.model_state(model).in_stage(stage)

    def set_model_tag(self, model: str, key: str, value: str) -> None:
        with self.errors(f"model {model!r}"):
            self._client.set_registered_model_tag(model, key, value)

    def get_version(self, model: str, number: int) -> Version:
        with self.errors(f"version {number} of model {model!r}"):
            return _version(self._client.get_model_version(model, str(number)))

    def version_exists(self, model: str, number: int) -> bool:
        try:
            self.get_version(model, number)
        except NotFound:
            return False
        return True

    def search_page(
        self,
        model: str,
        page_size: int,
        page_token: str | None,
        ascending: bool = False,
        after: int = 0,
        upto: int | None = None,
    ) -> tuple[list[Version], str | None]:
        """One page of `model`'s versions by number, numbered above `after` and up to `upto` (None: no
        upper bound), and the next page's token."""
        order = "ASC" if ascending else "DESC"
        bounds = f" AND version_number > {int(after)}" if after else ""
        bounds += f" AND version_number <= {int(upto)}" if upto is not None else ""
        with self.errors(f"versions of model {model!r}"):
            return self._search(f"name='{model}'{bounds}", page_size, f"version_number {order}", page_token)

    def _search(
        self, filter_string: str, max_results: int, order_by: str | None = None, page_token: str | None = None
    ) -> tuple[list[Version], str | None]:
        """One page of MLflow's model-version search, and the next page's token."""
        page = self._client.search_model_versions(
            filter_string,
            max_results=max_results,
            order_by=[order_by] if order_by else None,
            page_token=page_token,
        )
        return [_version(found) for found in page], page.token or None

    def transition(self, model: str, number: int, stage: str, archive_existing: bool) -> Version:
        with self.errors(f"version {number} of model {model!r}"):
            return _version(
                self._client.transition_model_version_stage(
                    model, str(number), stage, archive_existing_versions=archive_existing
                )
            )

    def set_alias(self, model: str, alias: str, number: int) -> None:
        with self.errors(f"version {number} of model {model!r}"):
            self._client.set_registered_model_alias(model, alias, str(number))

    def delete_alias(self, model: str, alias: str) -> None:
        with self.errors(f"alias {alias!r} of model {model!r}"):
            self._client.delete_registered_model_alias(model, alias)

    def version_by_alias(self, model: str, alias: str) -> int:
        try:
            with self.errors(f"alias {alias!r} of model {model!r}"):
                return int(self._client.get_model_version_by_alias(model, alias).version)
        except BadInput:
            # MLflow answers 400 (not 404) for an alias that is not set.
            raise NotFound(f"alias {alias!r} of model {model!r} is not set") from None

    def create_model(self, model: str, description: str, tags: dict[str, str]) -> bool:
        """Create `model`; False when it already exists (creation is atomic on the server)."""
        from mlflow.exceptions import MlflowException

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._client.create_registered_model(model, tags=tags, description=description)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_ALREADY_EXISTS":
                return False
            raise translate(self.settings, f"model {model!r}", exc.error_code, str(exc)) from None
        return True

    def add_version(self, model: str, source: str, tags: dict[str, str]) -> Version:
        """A new version of `model` with `tags`, without waiting (no artifacts behind it).

        A retried POST may create it twice: callers tag it with a unique id and skip duplicates.
        """
        with self.errors(f"model {model!r}"):
            return _version(self._client.create_model_version(model, source, tags=tags, await_creation_for=0))

    def register_once(self, model: str, source: str, model_id: str | None, tags: dict[str, str]) -> Version:
        """Register `source` as a new version of `model` exactly once.

        MLflow's client retries a POST whose answer was lost, which the server may have applied
        already: the version carries a unique registration tag, and one search for it afterwards finds
        the versions a retry doubled (the first is kept, the others deleted) or, after a failure, the
        version that was created anyway.
        """
        token = uuid.uuid4().hex
        tags = {**tags, REGISTRATION_TAG: token}
        failure: RegistryError | None = None
        try:
            with self.errors(f"model {model!r}"):
                self._client.create_model_version(
                    model, source, tags=tags, model_id=model_id, await_creation_for=0
                )
        except RegistryError as exc:
            if type(exc) not in (Unreachable, ServerFailed, RegistryError):  # refused: nothing was created
                raise
            failure = exc  # a lost connection or a server failure may hide an applied request
        applied = sorted(self.search_tagged(model, {REGISTRATION_TAG: token}), key=lambda v: v.number)
        if not applied:
            raise failure or RegistryError(f"MLflow registered no version of model {model!r}; try again")
        for duplicate in applied[1:]:
            self.delete_duplicate(model, duplicate.number, applied[0].number)
        return self.wait_ready(model, applied[0])

    def delete_duplicate(self, model: str, number: int, original: int) -> None:
        """Delete version `number`, a retried registration's double of `original` (or say so)."""
        try:
            self.delete_version(model, number)
        except RegistryError as exc:
            self.notify(f"warning: version {number} of {model!r} doubles {original} ({exc}); delete it")

    def wait_ready(self, model: str, version: Version, timeout: float = 300.0) -> Version:
        """`version` once its registration finished (READY), or Refused when it failed."""
        deadline = time.monotonic() + timeout
        while version.status == "PENDING_REGISTRATION" and time.monotonic() < deadline:
            time.sleep(0.5)
            version = self.get_version(model, version.number)
        if version.status != "READY":
            raise Refused(f"version {version.number} of model {model!r} is {version.status}, not READY")
        return version

    def search_tagged(
        self, model: str, tags: dict[str, str], excluding: dict[str, tuple[str, ...]] | None = None
    ) -> list[Version]:
        """Versions of `model` carrying all of `tags` and none of the values in `excluding` (one request;
        for small result sets)."""
        clauses = [f"name='{model}'"] + [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
        clauses += [
            f"tags.`{key}` != '{value}'" for key, values in (excluding or {}).items() for value in values
        ]
        with self.errors(f"versions of model {model!r}"):
            return self._search(" AND ".join(clauses), 10_000)[0]

    def load_model(self, model: str, number: int) -> Any:
        """The pyfunc model of version `number`; Refused naming why it cannot be loaded."""
        import mlflow.pyfunc
        from mlflow.exceptions import MlflowException

        subject = f"version {number} of model {model!r}"
        try:
            return mlflow.pyfunc.load_model(f"models:/{model}/{number}")
        except MlflowException as exc:
            error = translate(self.settings, subject, exc.error_code, str(exc))
            if isinstance(
                error, Unreachable
            ):  # a missing artifact is "cannot be loaded", not "does not exist"
                raise error from None
            raise Refused(f"{subject} cannot be loaded: {first_line(exc)}") from None
        except Exception as exc:  # a model's own code and pickles can raise anything
            raise Refused(f"{subject} cannot be loaded: {first_line(exc)}") from None

    def input_example(self, model: str, number: int) -> Any:
        """The input example stored with version `number` (reads MLmodel only), or None."""
        from mlflow.models import Model

        try:
            return Model.load(f"models:/{model}/{number}").load_input_example()
        except Exception:  # no artifacts, no example, unreadable: there is nothing to compare
            return None

    def touch_version(self, model: str, number: int, description: str) -> Version:
        """Rewrite the description of version `number`: the server stamps its update time."""
        with self.errors(f"version {number} of model {model!r}"):
            return _version(self._client.update_model_version(model, str(number), description=description))

    def delete_version(self, model: str, number: int) -> None:
        with self.errors(f"version {number} of model {model!r}"):
            self._client.delete_model_version(model, str(number))

    def set_version_tag(self, model: str, number: int, key: str, value: str) -> None:
        with self.errors(f"version {number} of model {model!r}"):
            self._client.set_model_version_tag(model, str(number), key, value)

    def delete_version_tag(self, model: str, number: int, key: str) -> None:
        with self.errors(f"version {number} of model {model!r}"):
            self._client.delete_model_version_tag(model, str(number), key)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of each metric of run `run_id`: one request per run, remembered; empty when
        the run is gone or hidden from us (a version may outlive its run)."""
        if run_id not in self._run_metrics:
            try:
                with self.errors(f"run {run_id!r}"):
                    self._run_metrics[run_id] = dict(self._client.get_run(run_id).data.metrics)
            except (NotFound, PermissionDenied, BadInput):
                self._run_metrics[run_id] = {}
        return self._run_metrics[run_id]

    def run_metric(self, run_id: str, name: str) -> float | None:
        """Metric `name` of run `run_id` (see `run_metrics`), or None."""
        return self.run_metrics(run_id).get(name) if run_id else None

    def download_version(self, model: str, number: int, destination: str) -> str:
        """Download the artifacts of version `number` (MLmodel, signature, input example, requirements)
        into the folder `destination`; returns the model's folder there."""
        import mlflow.artifacts

        # By its storage location: MLflow resolves a `models:/` URI on the process-wide registry URI.
        with self.errors(f"the artifacts of version {number} of model {model!r}"):
            location = self._client.get_model_version_download_uri(model, str(number))
            return str(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=location, dst_path=destination, tracking_uri=self.settings.tracking_uri
                )
            )

    def upload_model(
        self, folder: str, run_name: str, tags: dict[str, str], metrics: dict[str, float]
    ) -> tuple[str, str]:
        """Log the model folder `folder` on this server, as it is, as a new logged model of a new run
        (EXPERIMENT_NAME) carrying `tags` and `metrics`; returns (model id, run id)."""
        from mlflow.entities import Metric

        with self.errors("the copied model"):
            experiment_id = self._experiment_id(self.settings.experiment_name)
            run_id = self._client.create_run(experiment_id, tags=tags, run_name=run_name).info.run_id
            stamp = int(time.time() * 1000)
            batch = [Metric(key, value, stamp, 0) for key, value in sorted(metrics.items())][:1000]
            if batch:
                self._client.log_batch(run_id, metrics=batch)
            logged = self._client.create_logged_model(
                experiment_id, name="model", source_run_id=run_id, tags=tags
            )
            self._client.log_model_artifacts(logged.model_id, folder)
            self._client.finalize_logged_model(logged.model_id, "READY")
            self._client.set_terminated(run_id)
        return str(logged.model_id), str(run_id)

    def _experiment_id(self, name: str) -> str:
        """The id of experiment `name`, created when missing (a concurrent creation is fine)."""
        from mlflow.exceptions import MlflowException

        found = self._client.get_experiment_by_name(name)
        if found is None:
            try:
                return str(self._client.create_experiment(name))
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                found = self._client.get_experiment_by_name(name)
        return str(found.experiment_id)

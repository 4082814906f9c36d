"""Train the Iris classifier, log it with signature and input example, register a version."""

from __future__ import annotations

import contextlib
import dataclasses
import io
from importlib.metadata import version as installed

from registry import ledger, roles
from registry.client import ACCURACY_TAG, Registry
from registry.errors import NotFound


@dataclasses.dataclass(frozen=True)
class TrainParams:
    c_param: float = 1.0
    max_iter: int = 200
    seed: int = 42


@dataclasses.dataclass(frozen=True)
class Trained:
    model: str
    version: int
    run_id: str
    accuracy: float


def pip_requirements() -> list[str]:
    """Pinned requirements, so `log_model` skips its ~2.4 s inference subprocess."""
    packages = ("mlflow", "scikit-learn", "numpy", "pandas", "scipy", "skops")
    return [f"{name}=={installed(name)}" for name in packages]


def train_and_register(registry: Registry, model: str, params: TrainParams, reason: str) -> Trained:
    """Fit, log and register one new version of `model`; wait until it is READY (`params` are checked
    by the command line: C > 0, 1 <= max_iter, 0 <= seed < 2**32). A new model is tagged with LIFECYCLE."""
    mode = registry.settings.lifecycle
    if mode == "aliases":
        with contextlib.suppress(NotFound):
            roles.of(registry, model)  # a model in the other lifecycle is refused before the training
    ledger.ensure(registry, model)

    import mlflow
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split

    features, target = load_iris(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.2, random_state=params.seed, stratify=target
    )
    classifier = LogisticRegression(C=params.c_param, max_iter=params.max_iter, random_state=params.seed)
    classifier.fit(x_train, y_train)
    accuracy = float(accuracy_score(y_test, classifier.predict(x_test)))

    # MLflow prints "View run ... at <server>" and registration chatter; the CLI reports instead.
    chatter = io.StringIO()
    with (
        registry.errors(f"training run of model {model!r}"),
        contextlib.redirect_stdout(chatter),
        contextlib.redirect_stderr(chatter),
    ):
        mlflow.set_tracking_uri(registry.settings.tracking_uri)
        mlflow.set_experiment(registry.settings.experiment_name)
        with mlflow.start_run() as run:
            mlflow.log_params({"C": params.c_param, "max_iter": params.max_iter, "seed": params.seed})
            mlflow.log_metric("accuracy", accuracy)
            example = x_train.head(5)
            info = mlflow.sklearn.log_model(
                classifier,
                name="model",
                signature=infer_signature(x_train, classifier.predict(x_train)),
                input_example=example,
                pip_requirements=pip_requirements(),
            )
    description = "Iris classifier (scikit-learn LogisticRegression)"
    created = registry.create_model(model, description=description, tags={roles.MODE_TAG: mode})
    claimed = []
    if mode == "aliases":  # the model's first lifecycle, recorded (an untagged one is claimed here)
        new = [ledger.Change("lifecycle", None, to=mode)] if created else []
        claimed = roles.of(registry, model).claim(registry, model) or new
    registered = registry.register_once(
        model, info.model_uri, info.model_id, {ACCURACY_TAG: f"{accuracy:.4f}"}
    )
    version = registered.number
    ledger.record(registry, model, [*claimed, ledger.Change("train", version, to="None")], reason=reason)
    return Trained(model=model, version=version, run_id=run.info.run_id, accuracy=accuracy)

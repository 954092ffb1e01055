"""A compile as an MLflow run, for users who track DSPy there (the optional `mlflow` extra).

`log_compile` writes one finished run: the compile's parameters, the dev metrics of the parent
(`before.*`) and of the compiled version (`after.*`), any other figures (the gate's, the compile's
cost), and the version directory as the run's artifacts. It goes through `MlflowClient` against the
given tracking URI, so it never touches MLflow's global tracking URI or active run.

MLflow 3 refuses a plain file store (`file:///...mlruns`) unless `MLFLOW_ALLOW_FILE_STORE=true` is
set; its own message, which says so, is passed on in one line.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from purpose_dspy.errors import UsageError

logger = logging.getLogger(__name__)

EXPERIMENT = "purpose-dspy"
INSTALL = "pip install 'purpose-dspy[mlflow]'"
_PARAM_CAP = 6000  # MLflow's limit on a parameter's value


def require_mlflow() -> None:
    """Fail before a long compile, not after it, when MLflow is not installed."""
    try:
        import mlflow  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"--mlflow-uri needs MLflow: {INSTALL}") from exc


def log_compile(tracking_uri: str, *, params: Mapping[str, Any], metrics_before: Mapping[str, Any] | None,
                metrics_after: Mapping[str, Any] | None, artifact_dir: str | Path,
                metrics: Mapping[str, Any] | None = None, experiment: str = EXPERIMENT,
                run_name: str | None = None) -> str:
    """Log one compile as a finished MLflow run under `experiment`; returns the run's id.

    Numbers in the metric mappings are logged (nested mappings and lists by dotted keys: `before.success_rate`,
    `after.success_ci.0`, `gate.wins`); text and missing values are left out. Parameters become text (JSON for
    anything not text)."""
    require_mlflow()
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunStatus
    from mlflow.exceptions import MlflowException

    directory = Path(artifact_dir)
    if not directory.is_dir():
        raise UsageError(f"artifact directory {directory} does not exist; pass the compiled version's directory")
    store = Path(tracking_uri.removeprefix("file://")) if "://" not in tracking_uri.removeprefix("file://") else None
    if store is not None and store.resolve().is_relative_to(directory.resolve()):
        raise UsageError(f"the MLflow store {tracking_uri} lies inside the artifact directory {directory}; "
                         "put it somewhere else")
    stamp = int(time.time() * 1000)
    figures = {**_flat("before", metrics_before), **_flat("after", metrics_after), **_flat("", metrics)}
    try:
        client = MlflowClient(tracking_uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        run = client.create_run(experiment_id, run_name=run_name,
                                tags={"purpose_dspy.artifact_dir": str(directory.resolve())})
        run_id = run.info.run_id
        client.log_batch(run_id, params=[Param(k, _text(v)) for k, v in params.items()],
                         metrics=[Metric(k, v, stamp, 0) for k, v in figures.items()])
        client.log_artifacts(run_id, str(directory), artifact_path="artifact")
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    except MlflowException as exc:
        raise UsageError(f"MLflow at {tracking_uri} refused the compile's run: {_first_line(exc)}") from exc
    logger.info("logged the compile of %s as MLflow run %s at %s", directory, run_id, tracking_uri)
    return run_id


def _flat(prefix: str, values: Any) -> dict[str, float]:
    """The numbers of a nested mapping under dotted keys (booleans as 0/1)."""
    if isinstance(values, bool):
        return {prefix: float(values)}
    if isinstance(values, (int, float)):
        return {prefix: float(values)} if prefix else {}
    if isinstance(values, Mapping):
        items = values.items()
    elif isinstance(values, (list, tuple)):
        items = enumerate(values)
    else:
        return {}
    out: dict[str, float] = {}
    for key, value in items:
        out.update(_flat(f"{prefix}.{key}" if prefix else str(key), value))
    return out


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text[:_PARAM_CAP]


def _first_line(exc: BaseException) -> str:
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)

"""A compile as an MLflow run, against a real local file store (`pip install 'purpose-dspy[mlflow]'`)."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from purpose_dspy.errors import UsageError
from purpose_dspy.monitor.mlflow_runs import log_compile


@pytest.fixture
def mlflow():
    return pytest.importorskip("mlflow", reason="MLflow is not installed: pip install 'purpose-dspy[mlflow]'")


@pytest.fixture
def store(tmp_path, monkeypatch, mlflow):
    """A file store (MLflow 3 refuses one unless told it is wanted)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return (tmp_path / "mlruns").as_uri()


def version_dir(tmp_path):
    directory = tmp_path / "compiled" / "maze" / "v1"
    directory.mkdir(parents=True)
    (directory / "manifest.json").write_text('{"version": 1}')
    (directory / "actor.json").write_text("{}")
    return directory


def test_a_compile_is_one_finished_run_with_params_metrics_and_the_artifact(tmp_path, store, mlflow):
    directory = version_dir(tmp_path)
    run_id = log_compile(
        store, params={"taskset": "maze", "seed": 0, "lms": {"actor": "local/smollm2-135m"}},
        metrics_before={"success_rate": 0.25, "success_ci": [0.1, 0.5], "split": "dev", "by_role": {"actor": {"calls": 7}}},
        metrics_after={"success_rate": 0.75, "mean_phi_gain": None},
        metrics={"gate": {"wins": 5, "losses": 0, "promoted": True, "p_value": None}}, artifact_dir=directory)
    client = mlflow.MlflowClient(store)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"taskset": "maze", "seed": "0", "lms": '{"actor": "local/smollm2-135m"}'}
    assert run.data.metrics == {"before.success_rate": 0.25, "before.success_ci.0": 0.1, "before.success_ci.1": 0.5,
                                "before.by_role.actor.calls": 7.0, "after.success_rate": 0.75, "gate.wins": 5.0,
                                "gate.losses": 0.0, "gate.promoted": 1.0}
    assert run.data.tags["purpose_dspy.artifact_dir"] == str(directory.resolve())
    assert sorted(f.path for f in client.list_artifacts(run_id, "artifact")) == ["artifact/actor.json",
                                                                                  "artifact/manifest.json"]
    second = log_compile(store, params={}, metrics_before=None, metrics_after={"success_rate": 1.0},
                         artifact_dir=directory)
    experiment = client.get_experiment_by_name("purpose-dspy")
    runs = client.search_runs([experiment.experiment_id])
    assert {r.info.run_id for r in runs} == {run_id, second}


def test_refusals_are_one_line_usage_errors(tmp_path, store, monkeypatch):
    directory = version_dir(tmp_path)
    with pytest.raises(UsageError, match="does not exist"):
        log_compile(store, params={}, metrics_before=None, metrics_after=None, artifact_dir=tmp_path / "nope")
    with pytest.raises(UsageError, match="lies inside the artifact directory"):
        log_compile((directory / "mlruns").as_uri(), params={}, metrics_before=None, metrics_after=None,
                    artifact_dir=directory)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    with pytest.raises(UsageError, match="MLflow at .* refused the compile's run: .*MLFLOW_ALLOW_FILE_STORE") as exc:
        log_compile(store, params={}, metrics_before=None, metrics_after=None, artifact_dir=directory)
    assert "\n" not in str(exc.value)


def test_compile_logs_to_mlflow_uri(tmp_path, store, mlflow, monkeypatch):
    """`compile --mlflow-uri`: the real compile (rule LM), then its run: the dev figures before and after, the gate."""
    from rule_lm import rule_lms

    import purpose_dspy.jobs as job
    from purpose_dspy.cli import main

    lms, _ = rule_lms()
    monkeypatch.setattr(job, "build_role_lms", lambda config, roles=(): {r: lms[r] for r in roles})
    result = CliRunner().invoke(main, ["compile", "tasksets/treasure-maze.toml", "--out", str(tmp_path / "maze"),
                                       "--train", "2", "--dev", "3", "--run-dir", str(tmp_path / "runs"),
                                       "--mlflow-uri", store])
    assert result.exit_code == 0, result.output
    client = mlflow.MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("purpose-dspy").experiment_id])
    assert f"logged to MLflow: run {run.info.run_id}" in result.output
    assert run.data.params["version"] == "1" and run.data.params["promoted"] == "false"
    assert run.data.metrics["before.n"] == 3 and run.data.metrics["after.n"] == 3
    assert run.data.metrics["gate.paired"] == 3 and "after.success_rate" in run.data.metrics
    assert any(f.path == "artifact/manifest.json" for f in client.list_artifacts(run.info.run_id, "artifact"))


def test_compile_refuses_mlflow_uri_without_mlflow_before_compiling(tmp_path, monkeypatch):
    import purpose_dspy.jobs as job
    from purpose_dspy.cli import main

    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setattr(job, "compile_taskset", lambda *a, **k: pytest.fail("compiled anyway"))
    result = CliRunner().invoke(main, ["compile", "tasksets/treasure-maze.toml", "--out", str(tmp_path / "maze"),
                                       "--mlflow-uri", (tmp_path / "mlruns").as_uri()])
    assert result.exit_code == 2 and "pip install 'purpose-dspy[mlflow]'" in result.output

"""--track mlflow: one MLflow run per vaelab run, with the config, per-epoch metrics, eval.json and pictures."""
import json

import pytest

from vaelab.cli import main

pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")  # the default store is a SQLite file
from mlflow.tracking import MlflowClient  # noqa: E402

SETS = [a for s in ("data.val_size=200", "model.hidden=[32]", "model.latent_dim=3", "train.batch_size=64",
                    "train.progress=false") for a in ("--set", s)]


def test_mlflow_holds_the_run_and_a_resume_continues_it(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    run = tmp_path / "runs" / "vae"
    assert main(["train", "--dataset", "digits", "--epochs", "2", "--out", str(run), "--track", "mlflow", *SETS]) == 0
    saved = json.loads((run / "mlflow.json").read_text())
    assert saved["tracking_uri"] == f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"  # beside the run directory
    assert not (run / "tensorboard").exists()
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    assert main(["eval", str(run)]) == 0
    assert json.loads((run / "mlflow.json").read_text()) == saved  # the same MLflow run after the resume

    client = MlflowClient(saved["tracking_uri"])
    runs = client.search_runs([client.get_experiment_by_name("vaelab").experiment_id])
    assert [r.info.run_id for r in runs] == [saved["run_id"]]  # one MLflow run for the one vaelab run
    r = runs[0]
    assert r.info.run_name == "vae" and r.info.status == "FINISHED"
    assert r.data.params["model.latent_dim"] == "3" and r.data.params["train.track"] == "mlflow"
    assert r.data.params["model.hidden"] == "[32]" and r.data.params["data.name"] == "digits"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    history = client.get_metric_history(r.info.run_id, "val/loss")
    assert [(m.step, m.value) for m in history] == [(rec["step"], rec["val/loss"]) for rec in records]
    assert len(history) == 3
    artifacts = {a.path for a in client.list_artifacts(r.info.run_id)}
    assert {"curves.png", "eval.json"} <= artifacts


def test_track_none_and_a_bad_tracker(tmp_path, capsys):
    run = tmp_path / "plain"
    assert main(["train", "--dataset", "digits", "--steps", "3", "--out", str(run), "--track", "none", *SETS]) == 0
    assert not (run / "tensorboard").exists() and not (run / "mlflow.json").exists()
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "digits", "--steps", "3", "--out", str(tmp_path / "x"), "--track", "wandb"])
    assert main(["train", "--dataset", "digits", "--steps", "3", "--out", str(tmp_path / "y"),
                 "--set", "train.track=wandb"]) == 2
    assert "train.track" in capsys.readouterr().err

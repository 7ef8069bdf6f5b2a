"""One training path: a job killed while it writes its predictions loses only that step.

Every study writes its extra outputs through ``fit_with_contract(finish=...)``: after training and
evaluation, before ``metrics.json``, with the backup deleted last. Here each study's own training function
is run on the tiny workflow's data and parameters, killed inside the predictions write, and rerun: the rerun
must resume from the final backup (no epoch trained again) and complete every output.
"""

from __future__ import annotations

import json

import pytest

import anatomy.io
from anatomy.training.setup import RunSettings


class Killed(BaseException):
    """Stands for SIGKILL inside the predictions write: nothing after it runs (not an Exception)."""


def _files(tmp_path):
    run = tmp_path / "run"
    return {"model": run / "model.keras", "history": run / "history.csv", "metrics": run / "metrics.json",
            "predictions": run / "predictions.npz", "backup": tmp_path / "backup"}


def _metrics(path):
    return json.loads(path.read_text())


def _crops(r, files, cfg):
    from anatomy.studies.crops import train_crops_run

    m = _metrics(r / "crops" / "baseline" / f"seed{cfg['crops']['baseline']['seeds'][0]}" / "metrics.json")
    return lambda: train_crops_run(mnist_h5=r / "data" / "mnist.h5", init_weights=r / "crops" / "init" /
                                   f"seed{m['seed']}.weights.h5", files=files, params=m["params"],
                                   run_settings=RunSettings(threads=2, seed=m["seed"], deterministic=True),
                                   data_seed=cfg["seed"])


def _iic(r, files, cfg):
    from anatomy.studies.iic import train_iic_run

    m = _metrics(next((r / "iic").glob("*/a1_o1/seed*/metrics.json")))
    return lambda: train_iic_run(mnist_h5=r / "data" / "mnist.h5", files=files, params=m["params"],
                                 transform_set=m["transform_set"], alpha=m["alpha"], alpha_over=m["alpha_over"],
                                 run_settings=RunSettings(threads=2, seed=m["seed"], deterministic=True))


def _digits(r, files, cfg):
    from anatomy.studies.digits import train_digits_model

    d = r / "digits"
    m = _metrics(next(d.glob("step1/seed*/metrics.json")))
    init = r.parent / m["init"]["file"]  # relative to the workflow's folder (an absolute path stays as it is)
    return lambda: train_digits_model(arrays=d / "arrays.npz", folds=d / "folds.csv", init_weights=init,
                                      test_labels=r / "data" / "digits" / "test_labels.csv", files=files,
                                      params=m["params"], part=m["part"],
                                      run_settings=RunSettings(threads=2, seed=m["seed"], deterministic=True),
                                      init_seed=m["init"]["seed"])


def _coreset(r, files, cfg):
    from anatomy.studies.coreset_controls import run_control

    m = _metrics(r / "coreset" / "control" / "full" / "seed0" / "metrics.json")
    return lambda: run_control(train_h5=r / "data" / "ellipses" / "train.h5", test_h5=r / "data" / "ellipses" /
                               "test.h5", init_weights=r / "coreset" / "init" / f"seed{m['seed']}.weights.h5",
                               files={**files, "selected": files["model"].parent / "selected.csv"},
                               params=m["params"], kind="full", size=None,
                               run_settings=RunSettings(threads=2, seed=m["seed"], deterministic=True))


@pytest.mark.workflow
@pytest.mark.parametrize("study", [_crops, _iic, _digits, _coreset], ids=["crops", "iic", "digits", "coreset"])
def test_a_kill_while_writing_predictions_loses_only_that_step(tiny_workflow, tmp_path, monkeypatch, study):
    import anatomy.studies.digits as digits

    files = _files(tmp_path)
    train = study(tiny_workflow.path / "results", files, tiny_workflow.config)
    real = anatomy.io.write_npz

    def killed(*a, **k):
        raise Killed

    monkeypatch.setattr(anatomy.io, "write_npz", killed)
    monkeypatch.setattr(digits, "write_npz", killed)  # imported at module level there
    with pytest.raises(Killed):
        train()
    assert not files["metrics"].exists() and not files["predictions"].exists()
    assert files["backup"].exists()  # the trained state survives the kill
    monkeypatch.setattr(anatomy.io, "write_npz", real)
    monkeypatch.setattr(digits, "write_npz", real)
    m = train()
    assert m["resumed_from_epoch"] == m["epochs_run"] > 0, m  # no epoch trained again
    assert files["predictions"].exists() and _metrics(files["metrics"])["epochs_run"] == m["epochs_run"]
    assert not files["backup"].exists()  # deleted last
    assert {"diverged", "stopped_early", "resumed_from_epoch", "max_epochs"} <= set(m)

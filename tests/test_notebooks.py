"""The notebooks of examples/ run end to end on a small budget (VAELAB_NOTEBOOK_SMALL=1: a few steps on the first
images of each split), and are kept in git without outputs."""
import json
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
NEEDS = {"04_anomaly_detection": ["mnist"]}  # datasets beyond Fashion-MNIST (Debian's package) that a notebook reads
SLOW = {"03_vqvae_code_prior"}  # trains a VQ-VAE and its PixelCNN prior: half a minute on 2 cores, so `-m slow`


def skip_without(names: list[str]) -> None:
    from vaelab.data import DataError, load_dataset

    for name in names:
        try:
            load_dataset(name)
        except DataError:
            pytest.skip(f"{name} is not on this machine (offline: no download)")


def test_there_are_notebooks_and_they_are_stored_without_outputs():
    assert len(NOTEBOOKS) >= 2
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, path.name
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} holds outputs"


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in SLOW else [])
                                  for p in NOTEBOOKS])
def test_notebook_runs_end_to_end(path, tmp_path, monkeypatch):
    """Every cell runs without an error (nbclient raises CellExecutionError with the cell's traceback), the runs it
    trained hold their best checkpoint, what it evaluated holds finite numbers, and it drew pictures."""
    skip_without(NEEDS.get(path.stem, []))
    monkeypatch.setenv("VAELAB_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("VAELAB_NOTEBOOK_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MPLBACKEND", "agg")
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    runs = [c.parent for c in (tmp_path / "runs").rglob("config.yaml")]
    assert runs and all((r / "checkpoints" / "best.safetensors").is_file() for r in runs), "the notebook trained no run"
    for e in (tmp_path / "runs").rglob("eval.json"):
        result = json.loads(e.read_text())
        assert all(v == v for v in result.values() if isinstance(v, float)), e  # no NaN
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "the notebook drew no picture"

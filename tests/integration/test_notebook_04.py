"""Notebook 04 (paper 000's grid) runs headless, start to end, on the quick grid.

Executed with papermill (``QUICK=True``, training inside the kernel) on the
session's small generated corpus; the executed copy and the study folder go
to tmp.  The kernel is a ``python3`` kernelspec for the interpreter running
the tests, put first on JUPYTER_PATH (the ``python3_kernel`` fixture of conftest).
"""
import pathlib

import nbformat
import pandas as pd

from helpers import notebook_outputs

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "notebooks" / "04_hpo_grid.ipynb"


def _parameters_source(notebook):
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "notebook 04 needs exactly one cell tagged 'parameters'"
    return cells[0].source


def test_notebook_04_defaults_to_the_full_grid_and_is_committed_executed():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    source = _parameters_source(notebook)
    assert "QUICK = False" in source and "DATA_DIR = None" in source
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert sum(bool(c.get("outputs")) for c in code) >= len(code) // 2, \
        "notebook 04 is committed without outputs; run `make notebooks`"


def test_notebook_04_runs_the_quick_grid_and_shows_tables_and_figures(
        python3_kernel, small_corpus_dir, tmp_path):
    import papermill
    out_dir = tmp_path / "hpo"
    executed = tmp_path / NOTEBOOK.name
    papermill.execute_notebook(str(NOTEBOOK), str(executed),
                               parameters={"QUICK": True, "OUT_DIR": str(out_dir), "WORKERS": 0},
                               kernel_name=python3_kernel, cwd=str(NOTEBOOK.parent),
                               progress_bar=False)
    notebook = nbformat.read(executed, as_version=4)
    text, images = notebook_outputs(notebook)
    assert "generated stand-in corpus, not CREMA-D" in text
    assert "Optimal accuracy" in text and "points_complete': 8" in text
    assert images >= 5, f"notebook 04 drew {images} figure(s)"
    assert (out_dir / "summary.md").is_file() and (out_dir / "grid.csv").is_file()
    # the held-out test protocol's section ran on the quick grid, apart from the reproduction
    assert "held-out test protocol" in text
    assert (out_dir / "confirm" / "summary.md").is_file()
    assert len(pd.read_csv(out_dir / "confirm" / "runs.csv")["seed"].unique()) == 2

"""The modelers' notebooks run top to bottom on a small world (a real Jupyter kernel from this venv), and
each ``.ipynb`` is the jupytext pair of its reviewable ``.py`` (percent format)."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("01-explore", "02-retrain", "03-explain")
KERNEL = "doudi-notebooks"
EXPECTED = {
    "01-explore": ("in the cohort",),
    "02-retrain": ("No champion yet: trained the default config as v1", "Registered v2 as challenger"),
    "03-explain": ("Explaining doudi-relapse-risk v1", "problems: 0"),
}
"""What each notebook prints when it ran on a fresh data folder, in order."""
PLOTS = {"01-explore": 1, "02-retrain": 0, "03-explain": 1 + 3 + 3}


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_ipynb_is_the_pair_of_the_py(name: str):
    text = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    stored = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    assert _cells(stored) == _cells(text), f"run: jupytext --sync notebooks/{name}.py"
    assert stored.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert all(not cell.get("outputs") for cell in stored.cells if cell.cell_type == "code"), (
        "commit notebooks without outputs")
    parameters = [cell for cell in stored.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1 and "DOUDI_NB_HOUSEHOLDS" in parameters[0].source


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernel spec for this interpreter in a temporary Jupyter path (nothing installed into the venv)."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(kernel_name=KERNEL, prefix=str(prefix), display_name="doudi (tests)")
    return prefix / "share" / "jupyter"


@pytest.fixture(scope="module")
def environment(kernel, tmp_path_factory):
    """The small world and a fresh data folder for the kernels, shared by the notebooks in order."""
    data = tmp_path_factory.mktemp("notebook-data")
    patch = pytest.MonkeyPatch()
    for key, value in {
        "JUPYTER_PATH": str(kernel), "PYTHONPATH": str(ROOT), "DOUDI_DATA_DIR": str(data),
        "DOUDI_NB_HOUSEHOLDS": "1200", "DOUDI_NB_MONTHS": "36", "DOUDI_NB_SEED": "5",
        "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
    }.items():
        patch.setenv(key, value)
    for key in ("MLFLOW_TRACKING_URI", "DOUDI_NB_WORLD", "DOUDI_DATABASE_URL", "MPLBACKEND"):
        patch.delenv(key, raising=False)
    yield data
    patch.undo()


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name: str, environment: Path, tmp_path: Path):
    from nbclient import NotebookClient

    notebook = jupytext.read(ROOT / "notebooks" / f"{name}.py")
    client = NotebookClient(notebook, kernel_name=KERNEL, timeout=1500, allow_errors=False,
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    client.execute()  # raises CellExecutionError, with the cell and traceback, on any error
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    assert not [output for output in outputs if output.get("output_type") == "error"]
    printed = "".join(output.get("text", "") for output in outputs if output.get("output_type") == "stream")
    for expected in EXPECTED[name]:
        assert expected in printed, printed
    images = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(images) >= PLOTS[name]

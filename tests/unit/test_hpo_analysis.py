"""The pure HPO analysis: hypervolume against Optuna's own, Pareto front, no import circle."""
import ast
import pathlib
import warnings

import numpy as np
import pytest

from tff_ser.hpo import analysis

HPO = pathlib.Path(__file__).resolve().parents[2] / "tff_ser" / "hpo"


def _optuna_hypervolume(points, reference):
    """Hypervolume of minimised ``points`` as Optuna's public hypervolume-history plot draws it."""
    import matplotlib
    matplotlib.use("Agg")
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["minimize", "minimize"])
    for f1, f2 in points:
        study.add_trial(optuna.trial.create_trial(values=[float(f1), float(f2)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the matplotlib backend is marked experimental
        ax = optuna.visualization.matplotlib.plot_hypervolume_history(
            study, reference_point=list(reference))
    return float(ax.get_lines()[0].get_ydata()[-1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hypervolume_equals_optunas(seed):
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 1, size=(40, 2))
    points[:5] = [[0.0, 0.9], [0.2, 0.2], [0.2, 0.2], [0.95, 0.01], [1.2, 0.1]]  # ties, outside
    ours = analysis.hypervolume_2d(points, reference=(1.0, 1.0))
    assert ours == pytest.approx(_optuna_hypervolume(points, (1.0, 1.0)), rel=1e-9)


def test_pareto_mask_keeps_exactly_the_non_dominated_points():
    acc = [0.5, 0.6, 0.6, 0.4, 0.7]
    time = [10, 20, 20, 5, 50]
    assert analysis.pareto_mask(acc, time).tolist() == [True, True, True, True, True]
    assert analysis.pareto_mask([0.5, 0.6], [10, 5]).tolist() == [False, True]


def test_report_and_plots_both_import_the_analysis_and_plots_never_the_report():
    def imports(name):
        tree = ast.parse((HPO / name).read_text())
        out = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        return out | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "tff_ser.hpo.report" not in imports("plots.py")  # report -> plots only: no circle
    assert "tff_ser.hpo.analysis" in imports("plots.py")
    assert "tff_ser.hpo.analysis" in imports("report.py")
    assert not {"tff_ser.hpo.report", "tff_ser.hpo.plots", "tff_ser.hpo.readout"} & imports(
        "analysis.py")

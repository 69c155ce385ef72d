"""minisnn.sklearn: scikit-learn's own estimator checks, the estimators' behaviour, checkpoints, pickling,
backends, and use in Pipeline, GridSearchCV and cross_val_score on HTRU2 (../shared/data, skipped when
absent). Skipped without scikit-learn. Networks are tiny so the file stays fast."""

import csv
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import make_blobs, make_regression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from minisnn import load_model  # noqa: E402
from minisnn.backends import BackendUnavailable, get_backend  # noqa: E402
from minisnn.data import read_htru2  # noqa: E402
from minisnn.sklearn import SNNClassifier, SNNMultiTaskClassifier, SNNRegressor  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HTRU2 = ROOT.parent / "shared" / "data" / "htru2" / "HTRU_2.csv"
TINY = {"depth": 2, "width": 16, "max_epochs": 20, "batch_size": 32, "random_state": 0}


def numba_available() -> bool:
    try:
        get_backend("numba")
    except BackendUnavailable:
        return False
    return True


# Every check passes; no expected failures are declared.
@parametrize_with_checks([SNNClassifier(**TINY), SNNRegressor(**TINY)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---- the module and its parameters ----------------------------------------------------------------
def test_import_without_scikit_learn_names_the_extra():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "try:\n    import minisnn.sklearn\nexcept ImportError as exc:\n    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert "pip install minisnn[sklearn]" in result.stdout


def test_no_other_minisnn_module_imports_the_sklearn_module():
    for path in (ROOT / "minisnn").rglob("*.py"):
        if path.name != "sklearn.py":
            text = path.read_text()
            assert "import sklearn" not in text and ".sklearn import" not in text and "minisnn.sklearn" not in text, path


@pytest.mark.parametrize("params, named", [
    ({"method": "lstm"}, "method"), ({"depth": -1}, "depth"), ({"depth": 2.5}, "depth"), ({"width": 0}, "width"),
    ({"dropout": 1.0}, "dropout"), ({"optimizer": "rmsprop"}, "optimizer"), ({"lr": 0.0}, "lr"),
    ({"momentum": 1.0}, "momentum"), ({"optimizer": "adam", "momentum": 0.5}, "momentum applies"),
    ({"batch_size": 0}, "batch_size"), ({"max_epochs": True}, "max_epochs"), ({"patience": 0}, "patience"),
    ({"validation_fraction": 1.0}, "validation_fraction"), ({"dtype": "float16"}, "dtype"),
    ({"random_state": "seed"}, "random_state"), ({"early_stopping": "yes"}, "early_stopping"),
])
def test_bad_parameters_are_stored_as_given_and_named_in_fit(params, named):
    clf = SNNClassifier(**params)
    assert all(clf.get_params()[key] is value for key, value in params.items())
    x, y = make_blobs(40, random_state=0)
    with pytest.raises(ValueError, match=named):
        clf.fit(x, y)


def test_combinations_build_model_rejects_are_errors():
    x, y = make_blobs(40, random_state=0)
    with pytest.raises(ValueError, match="dropout"):
        SNNClassifier(method="resnet", dropout=0.1, **TINY).fit(x, y)
    with pytest.raises(ValueError, match="width"):
        SNNClassifier(method="snn", width=None).fit(x, y)


# ---- classification ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blobs():
    x, y = make_blobs(200, centers=3, n_features=4, random_state=1)
    return x * 50 + 1000, np.array(["cat", "dog", "eel"])[y]  # far from standardized, string labels


def test_classifier_learns_string_labels_and_reports_them(blobs):
    x, y = blobs
    clf = SNNClassifier(**TINY).fit(x, y)
    assert list(clf.classes_) == ["cat", "dog", "eel"] and clf.n_features_in_ == 4 and clf.n_iter_ == 20
    proba = clf.predict_proba(x)
    assert proba.shape == (200, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (clf.predict(x) == clf.classes_[proba.argmax(axis=1)]).all()
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(x)), proba, rtol=1e-10)
    assert clf.score(x, y) > 0.95
    assert len(clf.history_) == 20 and clf.history_.train_loss[-1] < clf.history_.train_loss[0]


def test_binary_decision_function_is_the_log_odds_of_the_second_class(blobs):
    x, y = blobs
    keep = y != "eel"
    clf = SNNClassifier(**TINY).fit(x[keep], y[keep])
    decision, proba = clf.decision_function(x[keep]), clf.predict_proba(x[keep])
    assert decision.shape == (keep.sum(),)
    np.testing.assert_allclose(decision, np.log(proba[:, 1] / proba[:, 0]), rtol=1e-6, atol=1e-9)
    assert (clf.predict(x[keep]) == np.where(decision > 0, "dog", "cat")).all()


def test_same_random_state_same_model_another_differs(blobs):
    x, y = blobs
    first = SNNClassifier(**TINY).fit(x, y).predict_proba(x)
    np.testing.assert_array_equal(SNNClassifier(**TINY).fit(x, y).predict_proba(x), first)
    other = SNNClassifier(**{**TINY, "random_state": 1}).fit(x, y).predict_proba(x)
    assert not np.allclose(other, first)


@pytest.mark.skipif(not numba_available(), reason="the numba backend is not available")
@pytest.mark.parametrize("dtype, atol", [("float32", 1e-4), ("float64", 1e-10)])
def test_numpy_and_numba_backends_give_the_same_predictions(blobs, dtype, atol):
    x, y = blobs
    on_numpy = SNNClassifier(backend="numpy", dtype=dtype, **TINY).fit(x, y)
    on_numba = SNNClassifier(backend="numba", dtype=dtype, **TINY).fit(x, y)
    assert on_numba.backend_ == "numba" and on_numba.model_.backend.dtype == dtype
    np.testing.assert_array_equal(on_numba.predict(x), on_numpy.predict(x))
    np.testing.assert_allclose(on_numba.predict_proba(x), on_numpy.predict_proba(x), atol=atol)


def test_partial_fit_epochs_equal_fit(blobs):
    x, y = blobs
    fitted = SNNClassifier(**{**TINY, "max_epochs": 3}).fit(x, y)
    stepped = SNNClassifier(**TINY)
    with pytest.raises(ValueError, match="classes="):
        stepped.partial_fit(x, y)
    for _ in range(3):
        stepped.partial_fit(x, y, classes=["cat", "dog", "eel"])
    assert stepped.n_iter_ == 3
    np.testing.assert_array_equal(stepped.predict_proba(x), fitted.predict_proba(x))
    with pytest.raises(ValueError, match="not one of classes_"):
        stepped.partial_fit(x, np.where(y == "cat", "fox", y))


def test_early_stopping_holds_out_validation_data_and_restores_the_best_epoch(blobs):
    x, y = blobs
    clf = SNNClassifier(early_stopping=True, validation_fraction=0.2, patience=3,
                        **{**TINY, "max_epochs": 200}).fit(x, y)
    assert clf.n_iter_ < 200 and clf.history_.stopped_epoch == clf.n_iter_
    assert clf.best_epoch_ == clf.n_iter_ - 3
    assert len(clf.history_.val_loss) == clf.n_iter_
    with pytest.raises(ValueError, match="no validation"):
        SNNClassifier(early_stopping=True, validation_fraction=0.01, **TINY).fit(x[:20], y[:20])


def test_checkpoint_keeps_labels_and_standardization_for_minisnn_predict(blobs, tmp_path):
    x, y = blobs
    clf = SNNClassifier(**TINY).fit(x, y)
    path = clf.save_checkpoint(tmp_path / "clf.npz")
    model = load_model(path)
    assert model.meta["class_labels"] == ["cat", "dog", "eel"]
    data = tmp_path / "new.csv"
    with open(data, "w", newline="") as f:
        csv.writer(f).writerows([["a", "b", "c", "d"], *x[:10].tolist()])
    out = tmp_path / "pred.csv"
    result = subprocess.run([sys.executable, "-m", "minisnn", "predict", str(path), "--data", str(data),
                             "--output", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["predicted", "p_cat", "p_dog", "p_eel"]
    assert [r[0] for r in rows[1:]] == clf.predict(x[:10]).tolist()
    np.testing.assert_allclose([[float(v) for v in r[1:]] for r in rows[1:]], clf.predict_proba(x[:10]), atol=1e-5)


def test_labels_a_checkpoint_cannot_hold_are_an_error(blobs, tmp_path):
    x, y = blobs
    clf = SNNClassifier(**TINY).fit(x, y == "cat")  # bool labels
    with pytest.raises(ValueError, match="class label"):
        clf.save_checkpoint(tmp_path / "c.npz")


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=pytest.mark.skipif(
    not numba_available(), reason="the numba backend is not available"))])
def test_pickle_round_trip_predicts_and_trains_on(blobs, backend):
    x, y = blobs
    clf = SNNClassifier(backend=backend, **{**TINY, "max_epochs": 2}).fit(x, y)
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(x), clf.predict_proba(x))
    copy.partial_fit(x, y)
    clf.partial_fit(x, y)  # the optimizer's momentum came along: the next epoch matches too
    np.testing.assert_array_equal(copy.predict_proba(x), clf.predict_proba(x))


@pytest.mark.parametrize("method", ["snn", "msra", "batchnorm", "layernorm", "weightnorm", "highway", "resnet"])
def test_every_method_fits_predicts_and_pickles(blobs, method):
    x, y = blobs
    params = {**TINY, "max_epochs": 5, "width": None if method == "highway" else 16}
    clf = SNNClassifier(method=method, **params).fit(x, y)
    assert clf.score(x, y) > 0.6
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(x), clf.predict_proba(x))


def test_verbose_prints_one_line_per_epoch(blobs, capsys):
    x, y = blobs
    SNNClassifier(verbose=True, **{**TINY, "max_epochs": 4}).fit(x, y)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["epoch", f"{e}/4"] for e in range(1, 5)]
    SNNClassifier(**{**TINY, "max_epochs": 4}).fit(x, y)
    assert capsys.readouterr() == ("", "")


# ---- regression ------------------------------------------------------------------------------------
def test_regressor_standardizes_targets_inside_and_its_checkpoint_predicts_in_their_units(tmp_path):
    x, y = make_regression(300, 5, noise=1.0, random_state=0)
    y = 1000.0 + 500.0 * y  # far from standardized
    reg = SNNRegressor(**{**TINY, "max_epochs": 40}).fit(x, y)
    assert reg.score(x, y) > 0.9 and reg.predict(x).shape == (300,)
    np.testing.assert_allclose(reg.target_mean_, [y.mean()])
    model = load_model(reg.save_checkpoint(tmp_path / "reg.npz"))
    standardized = (x - np.array(model.meta["standardizer"]["mean"])) / np.array(model.meta["standardizer"]["scale"])
    np.testing.assert_allclose(model.logits(standardized)[:, 0], reg.predict(x), rtol=1e-5)
    two = SNNRegressor(**TINY).fit(x, np.stack([y, -y], axis=1))
    assert two.predict(x).shape == (300, 2) and two.n_outputs_ == 2


# ---- multi-task binary classification with missing labels ----------------------------------------
def test_multitask_classifier_learns_tasks_with_missing_labels(tmp_path):
    x, labels = make_blobs(300, centers=3, n_features=5, random_state=2)
    y = np.stack([labels == 0, labels == 1, labels == 2], axis=1).astype(np.float64)  # (300, 3)
    y[np.random.default_rng(0).random(y.shape) < 0.3] = np.nan  # 30% missing
    clf = SNNMultiTaskClassifier(task_names=["a", "b", "c"], **TINY).fit(x, y)
    proba = clf.predict_proba(x)
    assert proba.shape == (300, 3) and clf.predict(x).shape == (300, 3) and clf.n_tasks_ == 3
    observed = [~np.isnan(y[:, t]) for t in range(3)]
    expected = np.mean([roc_auc_score(y[seen, t], proba[seen, t]) for t, seen in enumerate(observed)])
    assert clf.score(x, y) == pytest.approx(expected, rel=1e-6) and expected > 0.95
    model = load_model(clf.save_checkpoint(tmp_path / "mt.npz"))
    assert model.meta["task"] == {"task": "multitask", "n_tasks": 3, "task_names": ["a", "b", "c"]}
    with pytest.raises(ValueError, match="not 0, 1 or NaN"):
        SNNMultiTaskClassifier(**TINY).fit(x, np.where(np.isnan(y), 2.0, y))
    with pytest.raises(ValueError, match="shape"):
        SNNMultiTaskClassifier(**TINY).fit(x, y[:, 0])


def test_missing_labels_are_left_out_not_read_as_a_value(blobs):
    x, _ = blobs
    y = (np.random.default_rng(1).random((200, 2)) < 0.5).astype(np.float64)  # (200, 2)
    masked = y.copy()
    masked[:100, 1] = np.nan
    proba = SNNMultiTaskClassifier(**TINY).fit(x, masked).predict_proba(x)
    for fill in (0.0, 1.0):
        filled = np.where(np.isnan(masked), fill, masked)
        assert not np.allclose(SNNMultiTaskClassifier(**TINY).fit(x, filled).predict_proba(x), proba)
    np.testing.assert_array_equal(SNNMultiTaskClassifier(**TINY).fit(x, masked).predict_proba(x), proba)


# ---- scikit-learn's tools on a real data set --------------------------------------------------
@pytest.fixture(scope="module")
def htru2():
    if not HTRU2.is_file():
        pytest.skip(f"HTRU2 not found at {HTRU2}")
    data = read_htru2(HTRU2)
    rows = np.random.default_rng(0).choice(len(data.y_train), 1500, replace=False)
    return data.x_train[rows], np.where(data.y_train[rows] == 1, "pulsar", "noise")


def test_pipeline_cross_val_score_and_grid_search_on_htru2(htru2):
    x, y = htru2
    params = {"depth": 2, "width": 16, "max_epochs": 5, "random_state": 0}
    pipe = make_pipeline(StandardScaler(), SNNClassifier(**params))
    scores = cross_val_score(pipe, x, y, cv=3, scoring="roc_auc")
    assert scores.shape == (3,) and scores.min() > 0.9
    search = GridSearchCV(SNNClassifier(**params), {"width": [8, 16], "method": ["snn", "msra"]}, cv=2,
                          scoring="roc_auc", n_jobs=2).fit(x, y)
    assert len(search.cv_results_["params"]) == 4 and search.best_score_ > 0.9
    assert search.best_estimator_.score(x, y) > 0.95

"""Small, fast settings the registry-wide contract tests use (they belong to the tests, not
to the library): constructor parameters and ``fit`` options per method name."""
from medseg.ml.estimators import TrainParams

# a reduced feature set and few training pixels so that every ML method fits in about a second
_ML_FEATURES = {"features": ("intensity", "gaussian", "hessian")}
_ML_FIT = {"options": TrainParams(samples_per_image=2000)}

PARAMS = {
    "random-forest": {**_ML_FEATURES, "n_estimators": 10},
    "extra-trees": {**_ML_FEATURES, "n_estimators": 10},
    "gradient-boosting": {**_ML_FEATURES, "max_iter": 20},
    "svm": {**_ML_FEATURES, "n_components": 50},
    "decision-tree": _ML_FEATURES,
    "knn": _ML_FEATURES,
    "mlp": {**_ML_FEATURES, "hidden_layers": (16,), "max_iter": 30},
    "unet": {"tta": False},
}

FIT = {name: _ML_FIT for name in ("random-forest", "extra-trees", "gradient-boosting", "svm", "decision-tree",
                                  "knn", "mlp")}
FIT["unet"] = {"epochs": 1, "iters_per_epoch": 4, "channels": (4, 8, 16), "batch_size": 2}


def params(name: str) -> dict:
    return dict(PARAMS.get(name, {}))


def fit_options(name: str) -> dict:
    return dict(FIT.get(name, {}))

# prediction options a loaded model folder takes (methods whose models take any)
PREDICT = {"unet": {"tta": False}}


def predict_options(name: str) -> dict | None:
    return PREDICT.get(name)

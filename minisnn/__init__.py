"""minisnn: a framework-free engine for Self-Normalizing Neural Networks."""

__version__ = "0.1.0"

from .backends import get_backend  # noqa: E402
from .checkpoint import load_model, load_training_state, save_checkpoint  # noqa: E402
from .constants import ALPHA_01, LAMBDA_01, alpha_dropout_params  # noqa: E402
from .model import Sequential, mlp  # noqa: E402
from .methods import METHODS, build_model  # noqa: E402  (also registers the normalization and block layers)
from .monitor import ActivationMonitor  # noqa: E402
from .optim import SGD, Adam, AdamW, Schedule  # noqa: E402
from .train import evaluate, fit, train_step  # noqa: E402
from .callbacks import Checkpoint, EarlyStopping, KeepBest  # noqa: E402
from .tasks import ClassificationTask, MultiTaskBinaryTask, RegressionTask  # noqa: E402
from .train import History  # noqa: E402

__all__ = [
    "__version__", "get_backend", "mlp", "Sequential", "ActivationMonitor", "SGD", "Adam", "AdamW", "Schedule", "fit", "evaluate", "train_step",
    "save_checkpoint", "load_model", "load_training_state", "ALPHA_01", "LAMBDA_01", "alpha_dropout_params",
]
__all__ += ["METHODS", "build_model", "History", "KeepBest", "EarlyStopping", "Checkpoint", "ClassificationTask", "MultiTaskBinaryTask",
            "RegressionTask"]

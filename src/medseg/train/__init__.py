"""Deep-learning training: fingerprint -> plan, patch sampling and augmentation, losses,
the training loop with exact resume, and k-fold orchestration."""
from medseg.train.config import TrainConfig
from medseg.train.plan import Plan, fingerprint, make_plan, plan_from_dict

__all__ = ["TrainConfig", "Plan", "fingerprint", "make_plan", "plan_from_dict", "train_model"]


def train_model(*args, **kwargs):
    """See :func:`medseg.train.engine.train_model`."""
    from medseg.train.engine import train_model as _tm

    return _tm(*args, **kwargs)

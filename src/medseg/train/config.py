"""Training options of the deep-learning method (``medseg train ... --method unet``)."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Training options; each field is a ``medseg train`` flag (``--time-budget 20``).

    The fields are the schedule (``epochs`` or ``time_budget``; ``iters_per_epoch``, ``val_every``,
    ``patience``), the folds (``fold``, ``folds``, ``seed``, ``resume``), the machine
    (``device``, ``workers``, ``compile``, ``progress``, ``distribute``) and overrides of the derived
    [`Plan`][medseg.dl.plan.Plan] (``net``, ``patch_size``, ``batch_size``,
    ``channels``, ``lr``, ``optimizer``, ``loss``; ``plan``: a JSON file of plan
    fields). Each field's ``help`` metadata (``medseg train --help``) says more.

    Examples
    --------
    >>> TrainConfig(epochs=5, fold="all").folds
    5
    """

    epochs: int | None = field(default=None, metadata={
        "help": "epochs of --iters-per-epoch steps (default 50 unless --time-budget is given)"})
    time_budget: float | None = field(default=None, metadata={
        "help": "minutes of training for the whole command; the LR schedule and the network "
                "size follow it"})
    fold: str = field(default="0", metadata={"help": "cross-validation fold K to train, or 'all' for every fold"})
    folds: int = field(default=5, metadata={"help": "number of cross-validation folds (1: no validation split)"})
    resume: bool = field(default=False, metadata={"help": "continue an interrupted run in --out"})
    seed: int = field(default=0, metadata={"help": "random seed (sampling, augmentation, initialisation, folds)"})
    iters_per_epoch: int = field(default=250, metadata={"help": "training steps per epoch"})
    val_every: int = field(default=1, metadata={"help": "validate every N epochs"})
    patience: int = field(default=0, metadata={"help": "early stopping after N validations without "
                                                        "improvement (0: off)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    workers: int | None = field(default=None, metadata={
        "help": "background augmentation threads (default: one per CPU core beyond the first, at most 2 "
                "on the CPU and 8 with a GPU; 0: batches made in the training thread)"})
    grad_clip: float = field(default=12.0, metadata={"help": "gradient norm clipping (0: off)"})
    ema: str = field(default="off", metadata={
        "help": "on: validate and ship a running average of the weights over the last ~10 percent of the steps "
                "(medseg.train.ema); off: the weights of the last step"})
    compile: str = field(default="auto", metadata={
        "help": "torch.compile the training network: auto (when a fold is planned to train for 5 minutes "
                "or more; compiling takes 20-60 s on a CPU), on or off; training goes on uncompiled, with a "
                "warning, where compiling fails (e.g. no C++ compiler)"})
    net: str | None = field(default=None, metadata={
        "help": "override the plan's network: unet, dynunet, classic-unet, attention-unet, segresnet, unet++, "
                "swin-unetr, unetr, smp-unet:resnet34, smp-unet:efficientnet-b0, smp-unet:mobilenet_v2 (2D), r2unet "
                "or unet-convlstm (3D); `medseg methods unet` lists what each takes"})
    patch_size: tuple[int, ...] | None = field(default=None, metadata={
        "help": "override the plan's patch size, e.g. 128,128"})
    batch_size: int | None = field(default=None, metadata={"help": "override the plan's batch size"})
    channels: tuple[int, ...] | None = field(default=None, metadata={"help": "override the widths, e.g. 16,32,64,128"})
    lr: float | None = field(default=None, metadata={"help": "override the initial learning rate"})
    optimizer: str | None = field(default=None, metadata={"help": "override the optimiser: adamw, adam or sgd"})
    loss: str | None = field(default=None, metadata={"help": "override the loss: dice_ce, dice or ce"})
    plan: str | None = field(default=None, metadata={"help": "JSON file of plan fields that override the derived plan"})
    fusion: str | None = field(default=None, metadata={
        "help": "how a multimodal case's modalities meet: 'early' (input channels of one network, the default) "
                "or 'late' (one encoder per modality, features fused at every level; --net unet only)"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})
    pretrained: str | None = field(default=None, metadata={
        "help": "a local state dict file (torchvision/timm/segmentation-models-pytorch layout) loaded into the "
                "network's encoder by name and shape (e.g. --net smp-unet:resnet34); prints how many tensors matched; "
                "one that matches nothing is an error"})
    init_from: str | None = field(default=None, metadata={
        "help": "start from a trained unet model folder: its network and every weight that fits (same classes: "
                "all of it; other classes: the body, with a new output layer; see --label-map, --adapt-channels)"})
    label_map: str | None = field(default=None, metadata={
        "help": "with --init-from: NEW:OLD,... starts new class NEW from the old model's class OLD (e.g. 1:1,2:1)"})
    adapt_channels: bool = field(default=False, metadata={
        "help": "with --init-from: data with another channel count adapts the old first layer (its filters averaged "
                "over the old channels) instead of being refused"})
    adversarial: bool = field(default=False, metadata={
        "help": "add a SegAN-style critic on (image, segmentation) pairs and its multi-scale feature loss to the "
                "segmentation loss"})
    adversarial_weight: float = field(default=0.1, metadata={
        "help": "weight of the adversarial term in the segmentation loss (with --adversarial)"})
    distribute: str = field(default="data", metadata={
        "help": "under torchrun (or --nproc): 'data' trains each fold with all processes (the batch split "
                "over them, DistributedDataParallel); 'folds' gives each process whole folds of --fold all "
                "(no communication while training: better with many folds and slow links)"})

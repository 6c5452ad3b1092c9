# Demo data and schedule: scikit-learn's digits written as a 64 px ImageFolder (train split used).
_base_ = ["./default_runtime.py"]
demo_digits = dict(size=64, seed=0)  # written to data_root, or <work_dir>/data/digits when data_root is None
blr = 4e-4  # lr 1e-4 at batch 64: higher rates wash out the features in so short a run
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    drop_last=True,
    sampler=dict(type="SeededAugSampler", shuffle=True),
    collate_fn=dict(type="pseudo_collate"),
    dataset=dict(
        type="PretrainImageFolder",
        data_root=None,
        split="train",
        img_size=64,
        crop_scale=(1.0, 1.0),  # no zoom: the probe sees whole, centred digits
        hflip=False,
        on_corrupt="fail",
    ),
)
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=None, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    accumulative_counts=1,
)
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=10)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-3, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", T_max=9, eta_min=0.0, by_epoch=True, begin=1, end=10, convert_to_iter_based=True),
]
default_hooks = dict(
    logger=dict(type="LoggerHook", interval=5),
    checkpoint=dict(type="CheckpointHook", interval=5, max_keep_ckpts=2, save_last=True),
)

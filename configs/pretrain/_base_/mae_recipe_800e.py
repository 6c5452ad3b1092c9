# MAE's published pretraining schedule: AdamW (0.9, 0.95), wd 0.05, 40 warmup epochs, cosine to 0,
# effective batch 4096 (e.g. 64 per process x 64 processes, or accumulative_counts).
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=None, betas=(0.9, 0.95), weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    accumulative_counts=1,
)
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=800)
param_scheduler = [
    dict(type="LinearLR", start_factor=1e-4, by_epoch=True, begin=0, end=40, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", T_max=760, eta_min=0.0, by_epoch=True, begin=40, end=800,
         convert_to_iter_based=True),
]

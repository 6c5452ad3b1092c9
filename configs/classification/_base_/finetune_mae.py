# MAE end-to-end fine-tuning protocol (facebookresearch/mae main_finetune.py defaults): AdamW,
# layer-wise lr decay, drop path, RandAugment + random erasing, mixup 0.8 / cutmix 1.0, label
# smoothing 0.1, global average pooling, cosine schedule with warmup. `tokes-bench eval finetune`
# fills the run-dependent fields marked None and derives train_cfg, param_scheduler and the lr
# (blr x batch_size x accum_iter x processes / 256) from the top-level schedule keys.
custom_imports = dict(imports=["tokes_bench.adapters.classification.finetune"], allow_failed_imports=False)

arch = None  # recipes set it; the encoder must then have this arch
dataset = None  # dataset name in the records; None: the data folder's name
img_size = 224
epochs = 100
warmup_epochs = 5
blr = 1e-3
min_lr = 1e-6
batch_size = 64  # per process
accum_iter = 1
val_interval = 1

mean = (0.485, 0.456, 0.406)
std = (0.229, 0.224, 0.225)

model = dict(
    type="TokesViTClassifier",
    encoder=None,
    num_classes=None,
    drop_path_rate=0.1,
    global_pool="avg",
    label_smoothing=0.1,
    mixup=dict(mixup_alpha=0.8, cutmix_alpha=1.0, cutmix_minmax=None, prob=1.0, switch_prob=0.5, mode="batch"),
    data_preprocessor=dict(type="BaseDataPreprocessor"),
)

train_dataloader = dict(
    batch_size=None,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
    dataset=dict(
        type="TokesImageFolder",
        data_root=None,
        split="train",
        transform=dict(
            input_size=None,
            is_training=True,
            auto_augment="rand-m9-mstd0.5-inc1",
            interpolation="bicubic",
            re_prob=0.25,
            re_mode="pixel",
            re_count=1,
            mean=mean,
            std=std,
        ),
    ),
)
val_dataloader = dict(
    batch_size=None,
    num_workers=10,
    persistent_workers=True,
    pin_memory=True,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="default_collate"),
    dataset=dict(
        type="TokesImageFolder",
        data_root=None,
        split="val",
        transform=dict(input_size=None, is_training=False, crop_pct=0.875, interpolation="bicubic", mean=mean, std=std),
    ),
)
val_evaluator = dict(type="TokesTopKAccuracy")
val_cfg = dict(type="ValLoop")

optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=None, betas=(0.9, 0.999), weight_decay=0.05),
    constructor="TokesLayerDecayOptimWrapperConstructor",
    paramwise_cfg=dict(layer_decay_rate=0.75),
)

default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=1, save_last=True),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork"), dist_cfg=dict(backend="nccl"))
log_level = "INFO"

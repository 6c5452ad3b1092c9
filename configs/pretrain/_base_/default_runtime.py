# Runtime shared by every pretraining config (mmengine). Values the wrapper resolves at run time:
# data_root (dataset path), blr -> optimizer lr (= blr x effective batch / 256), amp.
custom_imports = dict(imports=["tokes_bench.pretrain"], allow_failed_imports=False)

data_root = None  # ImageNet-style ImageFolder root (<root>/train/<class>/*.JPEG); --cfg-options data_root=...
blr = 1.5e-4  # base lr of MAE's recipe; lr = blr x (batch x processes x accumulative_counts) / 256
amp = "auto"  # auto (bf16 on CUDA that supports it, else fp32) | bf16 | fp16 | none

default_hooks = dict(
    runtime_info=dict(type="RuntimeInfoHook"),
    timer=dict(type="IterTimerHook"),
    sampler_seed=dict(type="DistSamplerSeedHook"),
    logger=dict(type="LoggerHook", interval=50),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=3, save_last=True),
)
custom_hooks = [dict(type="PretrainCheckpointHook")]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
    dist_cfg=dict(backend="nccl"),
)
randomness = dict(seed=0, deterministic=False, diff_rank_seed=False)
log_processor = dict(window_size=10, by_epoch=True)
log_level = "INFO"
visualizer = dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend")])
load_from = None
resume = False

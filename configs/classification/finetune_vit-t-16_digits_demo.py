# Demo: the MAE fine-tuning protocol scaled to the embedded digits (64 px, 10 classes, 1,348 train
# images) on a CPU. vit_tiny at 64 px = 16 patch tokens. Digit-specific changes: no horizontal flip,
# milder random-resized-crop scale, crop_pct 1.0 at eval; a short schedule (5 epochs, about 8 min per
# encoder on a busy 2-core CPU) with a larger base lr.
_base_ = ["./_base_/finetune_mae.py"]

arch = "vit_tiny_patch16_224"
dataset = "digits-demo"
img_size = 64
epochs = 5
warmup_epochs = 1
blr = 5e-3  # lr 1.25e-3 at batch 64: at MAE's 1e-3 the 105 steps leave a pretrained encoder's loss at chance
batch_size = 64
model = dict(drop_path_rate=0.1)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.75))
train_dataloader = dict(
    num_workers=2,
    persistent_workers=False,
    pin_memory=False,
    dataset=dict(transform=dict(hflip=0.0, scale=(0.35, 1.0))),
)
val_dataloader = dict(
    num_workers=2, persistent_workers=False, pin_memory=False, dataset=dict(transform=dict(crop_pct=1.0))
)
default_hooks = dict(logger=dict(interval=5))

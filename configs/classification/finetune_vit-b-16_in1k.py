# MAE FINETUNE.md, ViT-Base/16 on ImageNet-1K: 100 epochs, effective batch 1024 (32 per GPU x 32
# GPUs), blr 5e-4, layer decay 0.65, drop path 0.1, wd 0.05, mixup 0.8, cutmix 1.0, reprob 0.25.
# Published: 83.6 top-1 (MAE ViT-B/16, 1600-epoch pretraining).
_base_ = ["./_base_/finetune_mae.py"]

arch = "vit_base_patch16_224"
dataset = "imagenet-1k"
epochs = 100
warmup_epochs = 5
blr = 5e-4
batch_size = 32  # per GPU; 32 GPUs (4 nodes x 8) give MAE's 1024
model = dict(drop_path_rate=0.1)
optim_wrapper = dict(paramwise_cfg=dict(layer_decay_rate=0.65))

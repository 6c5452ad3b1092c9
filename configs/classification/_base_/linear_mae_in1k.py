# MAE LINPROBE.md on ImageNet-1K: frozen cls token, BatchNorm1d(affine=False) + linear head, LARS,
# batch 16384 (512 per GPU x 32 GPUs), blr 0.1 (lr = blr x batch / 256), wd 0, 90 epochs, 10 warmup.
# Published MAE linear top-1 (1600-epoch pretraining): ViT-B 68.0, ViT-L 75.8, ViT-H 76.6.
protocol = "linear"
dataset = "imagenet-1k"
img_size = 224
crop_pct = 0.875
pool = "token"
optimizer = "lars"
blr = 0.1
batch_size = 16384
weight_decay = 0.0
epochs = 90
warmup_epochs = 10
extract_batch_size = 256
num_workers = 10

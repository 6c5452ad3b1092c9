# Demo: MAE's linear probe on the embedded digits at 64 px (vit_tiny: 16 tokens), CPU-sized.
# 1,348 train images give ~10 steps per epoch instead of MAE's ~80, so LARS needs a far larger
# base lr than ImageNet's 0.1 (LARS scales each step to lr x 0.001 of the weight norm).
protocol = "linear"
arch = "vit_tiny_patch16_224"
dataset = "digits-demo"
img_size = 64
crop_pct = 1.0
pool = "token"
optimizer = "lars"
blr = 32.0
batch_size = 128
weight_decay = 0.0
epochs = 90
warmup_epochs = 10
extract_batch_size = 128
num_workers = 0

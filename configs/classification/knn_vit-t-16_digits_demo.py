# Demo: DINO's kNN (k=20, T=0.07, cosine) on the embedded digits at 64 px (vit_tiny: 16 tokens).
protocol = "knn"
arch = "vit_tiny_patch16_224"
dataset = "digits-demo"
img_size = 64
crop_pct = 1.0
pool = "token"
k = 20
temperature = 0.07
extract_batch_size = 128
num_workers = 0

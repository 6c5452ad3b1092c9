# DINO eval_knn.py on ImageNet-1K: cls-token features (eval transform: resize 256, center crop 224),
# L2-normalised, k = 20 nearest train images by cosine similarity, votes weighted exp(sim / 0.07).
protocol = "knn"
arch = "vit_base_patch16_224"
dataset = "imagenet-1k"
img_size = 224
crop_pct = 0.875
pool = "token"
k = 20
temperature = 0.07
extract_batch_size = 256
num_workers = 10

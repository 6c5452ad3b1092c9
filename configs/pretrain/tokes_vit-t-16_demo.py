# CPU demo: TOKES on the embedded digits (64 px, written into the work dir), ViT-Tiny/16 + small decoder.
# Minutes on a laptop CPU; the encoder beats random init on a digits linear probe.
_base_ = ["./_base_/demo_digits.py", "./_base_/tokes_model.py"]
model = dict(arch="vit_tiny_patch16_224", img_size=64, decoder_dim=128, decoder_depth=2, decoder_heads=4)

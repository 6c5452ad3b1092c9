"""One ViT encoder definition (timm) shared by pretraining, export and every adapter."""

from tokes_bench.models.encoder_io import EncoderInfo, load_encoder, save_encoder
from tokes_bench.models.vit import ENCODER_ARCHS, build_encoder, sincos_pos_embed_2d

__all__ = [
    "ENCODER_ARCHS",
    "EncoderInfo",
    "build_encoder",
    "load_encoder",
    "save_encoder",
    "sincos_pos_embed_2d",
]

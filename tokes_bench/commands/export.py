"""`tokes-bench export CHECKPOINT -o encoder.safetensors`: encoder weights in the shared format."""

from __future__ import annotations

import argparse

COMMAND = ("export",)
HELP = (
    "convert a run checkpoint, an official MAE .pth, a timm .safetensors/.pth or an mmpretrain "
    "checkpoint into an exported encoder (safetensors, timm keys, metadata)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint to convert")
    parser.add_argument("-o", "--output", required=True, help="output .safetensors path")
    parser.add_argument("--arch", help="expected timm arch (default: inferred from the weights)")
    parser.add_argument("--method", help="method recorded in the metadata (tokes|mae|random|other)")


def run(args: argparse.Namespace) -> int:
    from tokes_bench.models.encoder_io import save_encoder
    from tokes_bench.pretrain.export import convert_checkpoint

    if not args.output.endswith(".safetensors"):
        raise ValueError(f"output {args.output!r} must end with .safetensors")
    conv = convert_checkpoint(args.checkpoint, arch=args.arch, method=args.method)
    out = save_encoder(args.output, conv.weights, conv.metadata)
    print(f"{conv.source_format} checkpoint -> {out} ({conv.arch}, method {conv.metadata['method']})")
    print(
        f"kept {len(conv.weights)} encoder tensors; dropped {len(conv.dropped)} keys"
        + (f": {', '.join(conv.dropped[:12])}{' ...' if len(conv.dropped) > 12 else ''}" if conv.dropped else "")
    )
    for note in conv.notes:
        print(f"note: {note}")
    return 0

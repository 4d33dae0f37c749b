"""A trained run as ONNX graphs, to run without vaelab or PyTorch (onnxruntime, a browser, a phone).

    DIR/onnx/encoder.onnx    x [B, C, H, W] -> the posterior mean z [B, D]  (a VQ-VAE: z_e [B, d, H', W'])
    DIR/onnx/quantizer.onnx  a VQ-VAE only: z_e [B, d, H', W'] -> code indices [B, H', W'] (the nearest codeword)
    DIR/onnx/decoder.onnx    z [B, D] (a VQ-VAE: code indices [B, H', W']) -> the mean image E[x|z] [B, C, H, W]

Each graph is ``model.encode`` / ``model.decode`` of the loaded run (:func:`vaelab.models.load_run`), batch size
free. Needs the ``onnx`` package (``pip install vaelab[onnx]``).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn

from .config import ConfigError
from .durable import write_atomic
from .models import load_run, run_facts
from .rundir import RunDir

OPSET = 17


class _Call(nn.Module):
    """One method of a module (its weights the graph's) as a module's forward, for the exporter."""

    def __init__(self, module: nn.Module, method: str):
        super().__init__()
        self.module, self.method = module, method

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return getattr(self.module, self.method)(t)


def graphs(model: nn.Module, shape: tuple[int, ...]) -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """name -> (module, an example input) of every graph exported for ``model`` on images of ``shape`` [C, H, W]."""
    x = torch.rand(2, *shape)  # [2, C, H, W]
    if getattr(model, "conditional", False):
        raise ConfigError("export: a conditional model's encoder and decoder take class labels too; ONNX export of "
                          "conditional models is not supported yet")
    if hasattr(model, "quantizer"):  # a VQ-VAE: the lookup is a graph of its own
        z_e = model.encoder(x)
        return {"encoder": (model.encoder, x), "quantizer": (_Call(model.quantizer, "codes"), z_e),
                "decoder": (_Call(model, "decode"), model.quantizer.codes(z_e))}
    if not hasattr(model, "encode") or not hasattr(model, "latent_dim"):
        raise ConfigError(f"export: a {type(model).__name__} has no encoder and decoder to export")
    return {"encoder": (_Call(model, "encode"), x), "decoder": (_Call(model, "decode"), model.encode(x))}


def export_onnx(path: str | Path, out: str | Path | None = None, checkpoint: str = "best") -> dict[str, Path]:
    """Write run ``path``'s graphs as ONNX files into ``out`` (default ``path/onnx``); name -> file written."""
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        raise ConfigError("export --format onnx needs the onnx package: pip install 'vaelab[onnx]'") from None
    _, model = load_run(path, checkpoint)
    out = Path(out) if out is not None else Path(path) / "onnx"
    out.mkdir(parents=True, exist_ok=True)
    shape = tuple(run_facts(RunDir(path)).shape)  # [C, H, W]
    written = {}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing are for its developers
        for name, (module, example) in graphs(model, shape).items():
            graph = io.BytesIO()
            axes = {"input": {0: "batch"}, "output": {0: "batch"}}
            torch.onnx.export(module.eval(), (example,), graph, input_names=["input"], output_names=["output"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
            written[name] = out / f"{name}.onnx"
            write_atomic(written[name], graph.getvalue())  # whole or not at all, as every file vaelab writes
    return written

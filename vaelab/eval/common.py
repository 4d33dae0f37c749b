"""What every evaluation shares: batches of a split, eval mode for the time of an evaluation, the evaluation pass
size a model needs, reconstruction sums, and :func:`evaluate`, which picks the evaluator registered for the model's
family (:data:`EVALUATORS`). Each evaluator returns a dict whose ``loss`` is the validation criterion (lower is
better) that training uses for the best checkpoint and early stopping."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

from .. import noise
from ..data import Split
from ..objectives.mmd import WAE_SCALES, mmd_u
from ..registry import Registry
from .image import psnr, ssim

Reduce = Callable[[torch.Tensor], torch.Tensor] | None
EVALUATORS: Registry[Callable[..., dict]] = Registry("evaluator")  # by model family name
DEFAULT_EVAL_BATCH = 1000
MMD_EXAMPLES = 1000  # codes of a split compared with as many prior draws


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode inside, and back in the mode it had afterwards, even when the evaluation fails."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def batches(split: Split, batch_size: int, device, conditional: bool):
    """(index, x, y, images) for consecutive batches of ``split`` on ``device``: y only for conditional models;
    ``images`` the split's :attr:`~vaelab.data.Split.images` (the grey originals of binary draws x, else x)."""
    for i, start in enumerate(range(0, len(split), batch_size)):
        rows = slice(start, start + batch_size)
        x = split.batch(rows, device)
        y = None if split.y is None or not conditional else split.y[rows].to(device)
        yield i, x, y, x if split.source is None else split.source[rows].to(device)


def reconstruction_sums(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Summed per-image MSE, PSNR and SSIM of a batch against the images x (float64 scalars)."""
    se = ((x_hat - x) ** 2).flatten(1).mean(1)
    return {"se": se.double().sum(), "psnr": psnr(x, x_hat).double().sum(), "ssim": ssim(x, x_hat).double().sum()}


def eval_batch_size(model: nn.Module) -> int:
    """Examples per evaluation pass for ``model``: the smallest ``eval_batch_size`` that any of its modules
    declares, else 1000. Modules with wide activations at every pixel declare fewer (a VQ-VAE 50, a PixelCNN
    decoder 25): at 1000 examples a pass, their [1000, C, H, W] activations made MNIST evaluation 1.8-2.9x slower
    on 2 cores, while MLP and small conv VAEs are fastest at 500-1000."""
    sizes = [m.eval_batch_size for m in model.modules() if hasattr(m, "eval_batch_size")]
    return min(sizes, default=DEFAULT_EVAL_BATCH)


def evaluate(model: nn.Module, split: Split, *, batch_size: int | None = None, seed: int = 0,
             reduce: Reduce = None) -> dict:
    """The evaluation of ``model``'s family on ``split``, ``batch_size`` examples a pass (default
    :func:`eval_batch_size`); ``reduce`` sums the running totals over processes that each hold a shard."""
    evaluator = EVALUATORS.get(model.family.name)
    with evaluating(model):
        return evaluator(model, split, batch_size=batch_size or eval_batch_size(model), seed=seed, reduce=reduce)


class CodeSample:
    """The first :data:`MMD_EXAMPLES` codes z ~ q(z|x) of an evaluation, for the MMD between the aggregate posterior
    and the prior that every model with a continuous latent space reports (``mmd``): the unbiased MMD^2 under the
    WAE's inverse multiquadratic kernels (C = 2 d_z x 0.1 .. 10; :mod:`vaelab.objectives.mmd`), in float64, against
    as many prior draws seeded by ``seed``. 0 in expectation when q(z) = p(z). Sharded over ranks, each rank's
    estimate on its shard is averaged."""

    def __init__(self):
        self.parts: list[torch.Tensor] = []
        self.n = 0

    def add(self, z: torch.Tensor) -> None:
        take = min(MMD_EXAMPLES - self.n, len(z))
        if take > 0:
            self.parts.append(z[:take].double())
            self.n += take

    def sums(self, prior: nn.Module, seed: int) -> dict[str, torch.Tensor]:
        """{"mmd": this shard's estimate, "mmd_parts": 1}, to sum over ranks (float64 scalars)."""
        z = torch.cat(self.parts)
        with noise.batch_noise(noise.mix_seed(seed, -1), device=z.device):
            p = prior.sample(len(z), device=z.device).double()
        one = torch.ones((), dtype=torch.float64, device=z.device)
        return {"mmd": mmd_u(z, p, "imq", WAE_SCALES), "mmd_parts": one}

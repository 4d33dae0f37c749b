"""The M2 model of Kingma et al. 2014 ("Semi-supervised learning with deep generative models", §2.2): a CVAE,
p(x|y, z) p(z) p(y) with q(z|x, y), and a classifier q(y|x) that stands in for the label when it is missing."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .vae import VAE, ELBOTerms


@dataclass
class M2Terms(ELBOTerms):
    """The CVAE's terms, and the classifier's logits of q(y|x) [B, K]. Without labels every term has a leading class
    dimension: log_px_z, kl [K, B] under y = 0 .. K-1."""

    logits: torch.Tensor | None = None


class M2(VAE):
    """A conditional :class:`~vaelab.models.vae.VAE` with a classifier: ``classifier`` maps images to class
    logits [B, K], q(y|x) = softmax (Kingma et al. 2014, eq. 4)."""

    def __init__(self, *parts, classifier: nn.Module, **kwargs):
        super().__init__(*parts, **kwargs)
        self.classifier = classifier

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of q(y|x): [B, K]."""
        return self.classifier(x)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None, k: int | None = None) -> M2Terms:
        """With labels y [B]: the CVAE's pass (:meth:`VAE.forward`). Without: one pass under every class at once,
        the encoder's features shared and z drawn for each (class, example), terms [K, B] (no loop over classes)."""
        terms = super().forward(x, y, k) if y is not None else self._every_class(x)
        return M2Terms(**vars(terms), logits=self.classify(x))

    def _every_class(self, x: torch.Tensor) -> ELBOTerms:
        h = self.encoder(x)  # [B, F]
        n, c = len(x), self.num_classes
        onehot = torch.eye(c, dtype=h.dtype, device=h.device)[:, None].expand(c, n, c)  # [K, B, K]
        q = self.q(torch.cat([h.expand(c, *h.shape), onehot], -1))  # q(z|x, y): [K, B, D]
        z, log_qz = q.rsample_and_log_prob()  # [K, B, D], [K, B]: the examples' dimension second, as k samples
        log_px_z = self.likelihood.log_prob(x, self.decoder(torch.cat([z, onehot], -1)))  # [K, B]
        log_pz = self.prior.log_prob(z)
        kl, kl_per_dim = self.prior.kl(q, log_qz, log_pz)
        return ELBOTerms(log_px_z, kl, kl_per_dim, log_pz, log_qz, q, z, [kl], [self.latent_dim])

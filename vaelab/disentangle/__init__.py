"""Disentanglement: metrics on datasets with known generative factors (Locatello et al. 2019's protocol)."""
from .metrics import (METRICS, CodeMemo, FactorDataset, all_metrics, beta_vae_score, codes_of, dci,
                      factor_vae_score, mig, modularity_explicitness, sap)

__all__ = ["METRICS", "CodeMemo", "FactorDataset", "all_metrics", "beta_vae_score", "codes_of", "dci",
           "factor_vae_score", "mig", "modularity_explicitness", "sap"]

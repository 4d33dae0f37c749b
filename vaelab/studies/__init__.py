"""Studies and applications built on trained runs: latent arithmetic and concept vectors (``arithmetic``)."""

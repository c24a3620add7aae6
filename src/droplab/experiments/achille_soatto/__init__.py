"""Achille & Soatto 2017, "Information Dropout": as-size-sweep, as-cluttered-kl, as-priors, as-vae, as-disentangle."""

PAPER = "Achille & Soatto 2017"

"""Shalova, Peletier & Schlichting, "Regularization properties of dropout": sps-* experiments."""

"""Baldi & Sadowski 2014, "The dropout learning algorithm": bs-* experiments."""

"""Baselines on the shared backbone and trainer: VAE, beta-VAE, two-stage VAE."""

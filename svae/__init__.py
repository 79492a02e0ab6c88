"""The shared model family: backbone, Split VAE, losses, trainer, data and samplers."""

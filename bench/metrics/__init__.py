"""The measurement of generated images: feature extractors (extractors.py), metrics on features
(frechet.py, kernel.py, manifold.py) and the Scorer with its cached references (scoring.py).

Features are computed once per image set and every metric reads them; `python -m bench.fid` is the
command line.
"""
from bench.metrics.extractors import Extractor, features, inception_extractor
from bench.metrics.frechet import frechet_distance, frechet_distance_of, statistics
from bench.metrics.inception_weights import FID_WEIGHTS_FILE, MissingWeightsError
from bench.metrics.scoring import (DEFAULT_METRICS, METRICS, Figure, Reference, Scorer, check_metrics,
                                   reference_from_features)

__all__ = ["FID_WEIGHTS_FILE", "Extractor", "MissingWeightsError", "features", "inception_extractor",
           "frechet_distance", "frechet_distance_of", "statistics", "DEFAULT_METRICS", "METRICS", "Figure",
           "Reference", "Scorer", "check_metrics", "reference_from_features"]

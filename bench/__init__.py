"""The measurement: FID engine, the Ray Tune sweep, presets, the CLI; the cost tools and benchmarks in bench.cost."""

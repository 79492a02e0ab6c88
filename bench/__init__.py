"""The measurement: FID engine, the Ray Tune sweep, presets, the CLI and benchmarks."""

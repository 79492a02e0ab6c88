"""What a sweep costs, before and while it runs: the plan and its probe (plan.py, search_cost.py), the
GPU projection (projection.py, gpus.py, rates/), the simulated cluster (simulate.py and its stand-in
trial, simulated_trial.py), and the benchmarks (perf.py, perf_sweep.py, throughput.py, cpu_peak.py).

Production modules import only the plan from here (bench.run prints it before a sweep); the tools
here drive the production code through the arguments it takes (bench/seams.py), never by patching it."""

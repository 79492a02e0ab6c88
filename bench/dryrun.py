"""`python -m bench.run --dry-run`: what a sweep would do and cost, in seconds, without running it.

It checks what the real run checks first, naming every missing dataset split and the FID weights at
once (the real run stops at the first), the data from their files' headers and sizes alone
(svae.data.count_images: nothing decoded or downloaded; with --download the real run fetches them, so
they are not checked); prints the plan's counts; and costs it only from a rate that was measured at
these settings: a GPU's stored rates (bench/cost/rates/, whose projection is printed only when they cover
the plan's settings) or, with --probe, a short probe of this machine (minutes for the paper grid on
CPUs, with a progress line per cell). A missing input ends the dry run with exit 2.
"""


from bench.metrics.inception_weights import missing_weights
from bench.cost.plan import beside_words, counted_plan, curve_lines, make_plan, scoring_words
from bench.cost.projection import measured_gpu, projection_lines
from svae.data import count_images
from svae.errors import HarnessError


def missing_inputs(settings: dict, data_root, download: bool, reference_split: str, fid_weights) -> list:
    """One line per input the real run would stop at: a missing, truncated or too small dataset split
    (not checked with download: the real run fetches it), the FID weights."""
    missing = []
    checked = {} if download else settings
    for dataset, s in checked.items():
        for split in dict.fromkeys(("train", reference_split)):
            try:
                n = count_images(dataset, split, data_root)
            except HarnessError as e:
                missing.append(f"{dataset} {split}: {e}")
                continue
            if split == reference_split and s.fid_samples > n:
                missing.append(f"{dataset} {split}: {n} images, fewer than the {s.fid_samples} samples "
                               f"per output (the FID reference); pass --fid-samples {n} or less")
    if any("inception" in s.backbones() for s in settings.values()):
        # the real run would download pytorch-fid's file where the network allows; a dry run never does
        why = missing_weights(fid_weights or None)
        if why:
            missing.append(f"FID weights: {why}")
    return missing


def count_lines(plan) -> list:
    """The plan without times: trials, and per dataset and model the epochs and samples scored."""
    seeds = sorted({s.seed for s in plan.grid})
    models = list(dict.fromkeys(s.model for s in plan.grid))
    out = [f"plan: {len(plan.grid)} trials = {len(plan.settings)} dataset(s) x {len(models)} model(s) x "
           f"{len(seeds)} seed(s) (seeds {seeds[0]}..{seeds[-1]}), preset {plan.preset}"]
    for dataset, s in plan.settings.items():
        out.append(f"  {dataset}: {plan.cells[dataset, models[0]].stages[0].images} training images, batch "
                   f"{s.batch_size}, lr {s.lr:g}; {s.fid_samples} samples per output, scored with "
                   f"{scoring_words(s)}")
        out += curve_lines(s)
        for model in models:
            cell = plan.cells[dataset, model]
            stages = ", ".join(f"{st.name} {st.epochs} epochs" for st in cell.stages)
            out.append(f"    {model:10s} {stages}; {cell.scored} samples scored "
                       f"({len(cell.samplers)} samplers x {len(cell.outputs)} outputs){beside_words(cell, False)}")
    return out


def dry_run(args, config: dict, grid: list) -> int:
    """Print the checks, the plan and its cost; 2 when an input is missing, else 0."""
    settings = config["settings"]
    missing = missing_inputs(settings, args.data_root, args.download, args.reference_split, args.fid_weights)
    if args.probe:
        plan = make_plan(grid, args.preset, settings, args.cpus_per_trial, args.gpus_per_trial, args.max_concurrent,
                         remote=bool(args.address), progress=lambda line: print(line + "...", flush=True))
        print("\n".join(plan.lines()), flush=True)
    else:
        plan = counted_plan(grid, args.preset, settings, args.cpus_per_trial, args.gpus_per_trial, args.max_concurrent)
        print("\n".join(count_lines(plan)), flush=True)
    gpu = measured_gpu(plan)
    if gpu is not None:
        print("\n".join(projection_lines(plan, gpu)), flush=True)
    elif not args.probe:
        print("cost: no stored rates (bench/cost/rates/) were measured at these settings; --probe times a few "
              "batches of every model on this machine (minutes for large grids)", flush=True)
    if args.download:
        print("data: not checked (--download: the real run fetches what is missing when it starts)", flush=True)
    for line in missing:
        print(f"missing: {line}", flush=True)
    if missing:
        raise HarnessError(f"{len(missing)} input(s) missing (listed above); the real run would stop at the first")
    return 0

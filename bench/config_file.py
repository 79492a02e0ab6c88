"""Sweep configs as YAML files: `--config FILE.yaml` reads one, `--save-config FILE.yaml` writes the
sweep's defining config (what the manifest's config records: preset, datasets, models, seeds, the
flags that change the preset, and the --set overrides).

A file is turned into the command-line flags it stands for, placed before the command line's own,
so it is parsed and checked exactly as those flags and --set are, and a flag given on the command
line wins (--set adds to the file's overrides; the later value of a key wins):

    preset: cpu
    datasets: [fashion-mnist]
    seeds: 5
    set:
      epochs: 3
      model.backbone.base_width: 8

configs/ holds one per preset (python -m bench.run --preset NAME --save-config configs/NAME.yaml --dry-run).
"""
from pathlib import Path

import yaml

from svae.errors import HarnessError
from svae.io import atomic_write_text

LISTS = ("datasets", "models")  # nargs flags: a YAML list
SWITCHES = ("amp",)
INTEGERS = ("seeds", "fid_samples")  # store_true flags: true adds the flag, false leaves it out
KEYS = ("preset", *LISTS, "seeds", "fid_samples", "fid_backbone", "gmm_fit_on", "search", "reference_split",
        *SWITCHES, "set")


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _text(value) -> str:
    """A YAML value as --set would spell it: none, true/false, or the number or string."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def file_arguments(path: str) -> list:
    """The command-line flags a config file stands for, in KEYS order."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text())
    except OSError as e:
        raise HarnessError(f"cannot read config file {file} ({e.strerror or e}); pass an existing YAML file") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise HarnessError(f"config file {file} is not valid YAML{line}; "
                           "fix it or save one with --save-config") from None
    if not isinstance(raw, dict):
        raise HarnessError(f"config file {file} must be a mapping of keys ({', '.join(KEYS)}); see configs/")
    unknown = [k for k in raw if k not in KEYS]
    if unknown:
        raise HarnessError(f"config file {file} has unknown key {unknown[0]!r}; keys: {', '.join(KEYS)} "
                           "(settings go under set:, as with --set)")
    argv = []
    for key in (k for k in KEYS if k in raw):
        value = raw[key]
        if key == "set":
            if not isinstance(value, dict):
                raise HarnessError(f"config file {file}: set must map settings to values "
                                   "(e.g. set: {epochs: 3}); got {value!r}")
            argv += ["--set", *(f"{k}={_text(v)}" for k, v in _flatten(value))] if value else []
        elif key in LISTS:
            if not isinstance(value, list):
                raise HarnessError(f"config file {file}: {key} must be a list (e.g. {key}: [{value}])")
            argv += [_flag(key), *map(str, value)]
        elif key in SWITCHES or key == "search":
            if not isinstance(value, bool):
                raise HarnessError(f"config file {file}: {key} must be true or false (got {value!r})")
            argv += [_flag(key)] if value else [] if key in SWITCHES else ["--no-search"]
        elif key in INTEGERS and not (value is None or isinstance(value, int) and not isinstance(value, bool)):
            raise HarnessError(f"config file {file}: {key} must be a whole number (got {value!r})")
        elif value is not None:
            argv += [_flag(key), _text(value)]
    return argv


def _flatten(mapping: dict, prefix: str = "") -> list:
    """(dotted key, value) of nested mappings: model: {beta: 4} and model.beta: 4 say the same."""
    pairs = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            pairs += _flatten(value, f"{prefix}{key}.")
        else:
            pairs.append((f"{prefix}{key}", value))
    return pairs


def with_config_file(argv: list) -> list:
    """argv with the flags of its --config FILE (if any) put first, so the command line's own win."""
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return file_arguments(argv[i + 1]) + argv
        if arg.startswith("--config="):
            return file_arguments(arg.split("=", 1)[1]) + argv
    return argv


def save_config(path: str, config: dict) -> None:
    """Write the sweep's defining config (bench.run check_args's) as a file --config reads back."""
    data = {}
    for key in KEYS:
        value = config.get(key)
        if value is not None and not (key in SWITCHES and not value):  # unset: the preset's value
            data[key] = value
    if config.get("overrides"):
        data["set"] = dict(config["overrides"])
    if not Path(path).parent.is_dir():
        raise HarnessError(f"--save-config {path}: no folder {Path(path).parent}; create it or choose another path")
    header = "# python -m bench.run --config FILE: a sweep's defining config (bench/config_file.py)\n"
    atomic_write_text(Path(path), header + yaml.safe_dump(data, sort_keys=False, default_flow_style=None))

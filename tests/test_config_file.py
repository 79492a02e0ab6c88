"""--config FILE.yaml and --save-config FILE.yaml: a saved config passed back gives the same sweep
(the manifest's config), a file is checked as the flags it stands for, bad files are one line."""
import pytest

import bench.run
from bench.config_file import file_arguments

CONFIGS = bench.run.Path(bench.run.__file__).resolve().parents[1] / "configs"


def manifest_config(argv, tmp_path):
    """The manifest's config for argv, without starting anything (bench.run's own steps)."""
    args = bench.run.parse_args(argv)
    config = bench.run.check_args(args)
    grid = [bench.run.TrialSpec(d, m, s) for d in config["datasets"] for m in config["models"]
            for s in range(args.seeds)]
    manifest = bench.run.manifest_for(args, config, grid, "ray", 0.0, None, {})
    return {k: v for k, v in manifest["config"].items() if k != "command"}


def test_a_saved_config_passed_back_reproduces_the_manifest_config(tmp_path, capsys):
    saved = tmp_path / "sweep.yaml"
    flags = ["--preset", "smoke", "--datasets", "synthetic", "mnist", "--models", "svae", "rae", "--seeds", "3",
             "--fid-samples", "300", "--no-search", "--gmm-fit-on", "test", "--reference-split", "train",
             "--set", "epochs=2", "model.beta=4", "train_subset=none", "gmm.components=7", "--out", str(tmp_path / "r")]
    assert bench.run.main([*flags, "--save-config", str(saved), "--dry-run"]) in (0, 2)  # 2: mnist not here
    assert f"saved the sweep's config to {saved}" in capsys.readouterr().out
    again = manifest_config(["--config", str(saved), "--out", str(tmp_path / "r")], tmp_path)
    assert again == manifest_config(flags, tmp_path)
    assert again["overrides"] == {"epochs": 2, "model.beta": 4.0, "train_subset": None, "gmm.components": 7}
    assert again["settings"]["synthetic"]["model"]["beta"] == 4.0 and again["search"] is False


def test_command_line_flags_win_over_the_file_and_set_adds_to_it(tmp_path):
    file = tmp_path / "c.yaml"
    file.write_text("preset: smoke\ndatasets: [synthetic]\nseeds: 4\nset:\n  epochs: 2\n  model: {beta: 4}\n")
    config = manifest_config(["--config", str(file), "--seeds", "2", "--set", "epochs=5", "--out", "x"], tmp_path)
    assert config["seeds"] == 2 and config["overrides"] == {"epochs": 5, "model.beta": 4.0}


def test_every_example_config_is_a_valid_sweep(tmp_path):
    presets = {}
    for file in sorted(CONFIGS.glob("*.yaml")):
        presets[file.stem] = manifest_config(["--config", str(file), "--out", "x"], tmp_path)["preset"]
    assert presets == {"cpu": "cpu", "cpu-mnist": "cpu", "paper": "paper", "smoke": "smoke"}
    assert manifest_config(["--config", str(CONFIGS / "cpu.yaml"), "--out", "x"], tmp_path)["datasets"] == \
        ["fashion-mnist"]  # the committed study's
    mnist = manifest_config(["--config", str(CONFIGS / "cpu-mnist.yaml"), "--out", "x"], tmp_path)
    assert mnist["datasets"] == ["mnist"] and mnist["settings"]["mnist"]["epochs"] == 8  # the MNIST study's


@pytest.mark.parametrize("text, needle", [
    ("preset: smoke\nepochs: 3\n", "unknown key 'epochs'"),
    ("preset: [smoke\n", "not valid YAML at line"),
    ("- smoke\n", "must be a mapping"),
    ("datasets: synthetic\n", "datasets must be a list"),
    ("search: maybe\n", "search must be true or false"),
    ("set:\n  epochs: many\n", "epochs"),  # typed as --set is: an int
    ("set:\n  model.nope: 1\n", "model.nope"),
    ("seeds: lots\n", "seeds must be a whole number"),
])
def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path, capsys, text, needle):
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    try:
        code = bench.run.main(["--config", str(file), "--out", str(tmp_path / "r"), "--dry-run"])
    except SystemExit as e:  # the file is read with the arguments, before main's own error handling
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "r").exists()


def test_a_missing_config_file_is_named(tmp_path):
    with pytest.raises(bench.run.HarnessError, match="cannot read config file"):
        file_arguments(str(tmp_path / "none.yaml"))

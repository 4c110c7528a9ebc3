"""Settings: defaults, YAML file, environment precedence, refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from screener.errors import InputError
from screener.settings import load_settings, use_settings


def test_defaults_are_the_papers_conventions():
    settings = load_settings()
    assert settings.mongo_uri is None and settings.data_dir == Path("screener-data")
    assert settings.db_port is None and settings.launcher == "local"
    assert (settings.max_miller, settings.slab_min_thickness, settings.slab_min_width) == (
        2,
        7,
        4.5,
    )
    assert (settings.slab_max_atoms, settings.slab_vacuum, settings.fix_below) == (80, 10, 3)


def test_yaml_file_then_environment(tmp_path, monkeypatch):
    config = tmp_path / "screener.yaml"
    config.write_text("max_miller: 3\ndask_workers: 4\nmongo_uri: mongodb://db.example:27017\n")
    monkeypatch.setenv("SCREENER_CONFIG_FILE", str(config))
    monkeypatch.setenv("SCREENER_DASK_WORKERS", "1")
    settings = load_settings()
    assert settings.max_miller == 3  # from the file
    assert settings.dask_workers == 1  # the environment wins
    assert settings.mongo_uri == "mongodb://db.example:27017"  # from the file


@pytest.mark.parametrize(
    "content,message",
    [
        ("max_milller: 3\n", "invalid setting max_milller"),
        ("max_miller: 9\n", "invalid setting max_miller"),
        ("[unclosed\n", "not valid YAML"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_bad_config_files_are_input_errors(tmp_path, monkeypatch, content, message):
    config = tmp_path / "screener.yaml"
    config.write_text(content)
    monkeypatch.setenv("SCREENER_CONFIG_FILE", str(config))
    with pytest.raises(InputError, match=message):
        load_settings()


def test_missing_config_file(monkeypatch, tmp_path):
    monkeypatch.setenv("SCREENER_CONFIG_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(InputError, match="no such file"):
        load_settings()


def test_use_settings_is_the_one_override():
    with use_settings(max_miller=1) as settings:
        assert load_settings() is settings and settings.max_miller == 1
    assert load_settings().max_miller == 2


@pytest.mark.parametrize(
    "target, window, message",
    [
        (float("nan"), None, r"the CO target must be a number between -20 and 20 eV \(got nan\)"),
        (-float("inf"), None, r"CO target .* \(got -inf\)"),
        (None, 0.0, r"the CO window must be a number > 0 and <= 5 eV \(got 0.0\)"),
        (None, float("nan"), r"CO window .* \(got nan\)"),
    ],
)
def test_a_given_target_or_window_is_checked(target, window, message):
    settings = load_settings()
    with pytest.raises(InputError, match=message):
        settings.target_window("CO", target, window)


def test_a_given_target_or_window_overrides_the_adsorbates():
    settings = load_settings()
    default = settings.target_window("OH")
    assert settings.target_window("OH", -0.3).target == -0.3
    assert settings.target_window("OH", -0.3).window == default.window
    assert settings.target_window("OH", None, 0.05).target == default.target
    with use_settings(targets={"OH": {"target": 0.2, "window": 0.04}}) as custom:
        assert custom.target_window("OH", None, 0.05).target == 0.2


def test_cli_refuses_an_impossible_setting(tmp_path):
    screener = str(Path(sys.executable).with_name("screener"))
    env = {
        "PATH": "/usr/bin:/bin",
        "SCREENER_SLAB_MAX_ATOMS": "-5",
        "SCREENER_DATA_DIR": str(tmp_path / "data"),
    }
    proc = subprocess.run([screener, "seed", "-e", "Cu"], env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: invalid setting slab_max_atoms")
    assert not (tmp_path / "data").exists()


def test_the_cli_interval_range_is_the_settings_bound():
    import typer

    from screener.cli import app
    from screener.settings import MAX_LOOP_INTERVAL

    run = typer.main.get_command(app).commands["run"]
    (interval,) = [p for p in run.params if p.name == "interval"]
    assert (interval.min, interval.max) == (0.0, MAX_LOOP_INTERVAL)

"""The cluster's FireWorks files: the qadapter from the queue_* settings, and
``screener deploy launchpad`` writing the three YAMLs for the store in use (no Slurm needed)."""

from __future__ import annotations

import stat
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from fireworks import FWorker, LaunchPad
from fireworks.user_objects.queue_adapters.common_adapter import CommonAdapter

from screener.errors import InputError
from screener.jobs.queue import (
    FWORKER_FILE,
    LAUNCHPAD_FILE,
    QADAPTER_FILE,
    qadapter_spec,
    write_deploy_files,
)
from screener.settings import load_settings, use_settings
from screener.store import open_store

SCREENER = str(Path(sys.executable).with_name("screener"))

CLUSTER = {
    "queue_partition": "compute",
    "queue_account": "chem42",
    "queue_walltime": "1-02:30:00",
    "queue_nodes": 2,
    "queue_small_ranks": 4,
    "mpi_ranks": 64,
    "queue_pre_rocket": "module load gpaw/24.6\nsource /opt/screener/.venv/bin/activate",
}


def script_of(spec: dict, launch_dir: Path) -> str:
    """The batch script FireWorks' CommonAdapter renders from a qadapter dict."""
    return CommonAdapter.from_dict(spec).get_script_str(str(launch_dir))


def test_full_and_small_jobs_render_as_slurm_scripts(tmp_path: Path) -> None:
    with use_settings(data_dir=tmp_path / "data", **CLUSTER) as settings:
        full = qadapter_spec(settings, "full")
        small = qadapter_spec(settings, "small")
    for spec in (full, small):
        assert yaml.safe_load(yaml.safe_dump(spec)) == spec  # plain data, as my_qadapter.yaml
    script = script_of(full, tmp_path)
    assert script.startswith("#!/bin/bash")
    for line in (
        "#SBATCH --partition=compute",
        "#SBATCH --account=chem42",
        "#SBATCH --time=1-02:30:00",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks=64",
        "export SCREENER_MPI_RANKS=${SLURM_NTASKS:-64}",
        "export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1",
        "module load gpaw/24.6",
        f"cd {tmp_path}",
    ):
        assert line in script.splitlines(), line
    data = (tmp_path / "data").absolute()
    rocket = f"-l {data / LAUNCHPAD_FILE} -w {data / FWORKER_FILE} singleshot"
    assert full["rocket_launch"].endswith(rocket)
    assert Path(full["rocket_launch"].split()[0]).name == "rlaunch"
    assert full["logdir"] == str(data / "queue")
    # the site's lines come after screener's exports (they may override them)
    assert script.index("module load") > script.index("SCREENER_MPI_RANKS")

    small_script = script_of(small, tmp_path).splitlines()
    assert "#SBATCH --nodes=1" in small_script
    assert "#SBATCH --ntasks=4" in small_script
    assert "export SCREENER_MPI_RANKS=${SLURM_NTASKS:-4}" in small_script


def test_unset_partition_and_account_leave_the_cluster_defaults(tmp_path: Path) -> None:
    with use_settings(data_dir=tmp_path, queue_logdir=tmp_path / "logs") as settings:
        spec = qadapter_spec(settings, "full", directory=tmp_path / "deploy")
    script = script_of(spec, tmp_path)
    assert "--partition" not in script and "--account" not in script
    assert "#SBATCH --time=01:00:00" in script.splitlines()  # the default walltime
    assert f"-l {tmp_path / 'deploy' / LAUNCHPAD_FILE} " in spec["rocket_launch"]
    assert spec["logdir"] == str(tmp_path / "logs")
    with pytest.raises(ValueError, match="small, full"):
        qadapter_spec(settings, "huge")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("queue_walltime", "1h"),
        ("queue_nodes", 0),
        ("queue_partition", "debug; rm -rf /"),
    ],
)
def test_bad_queue_settings_are_one_line_input_errors(name: str, value: object) -> None:
    with pytest.raises(InputError, match=f"^invalid setting {name}: "):
        load_settings(**{name: value})


def test_write_deploy_files_for_the_store_in_use(settings, tmp_path: Path) -> None:
    target = tmp_path / "deploy"
    with open_store(settings) as store:
        paths = write_deploy_files(store, target)
        uri = store.uri
    assert paths == [target / LAUNCHPAD_FILE, target / FWORKER_FILE, target / QADAPTER_FILE]
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in paths)  # no temps
    assert stat.S_IMODE(paths[0].stat().st_mode) == 0o600  # the URI may carry a password

    launchpad_spec, fworker_spec, qadapter = (yaml.safe_load(p.read_text()) for p in paths)
    assert launchpad_spec["host"] == uri and launchpad_spec["name"] == settings.db_name
    launchpad = LaunchPad.from_dict(launchpad_spec)
    try:
        assert launchpad.fireworks.count_documents({}) == 0  # it reaches the store's database
    finally:
        launchpad.connection.close()
    worker = FWorker.from_dict(fworker_spec)
    assert worker.env == {}  # no mpi_ranks: each step's allocation decides
    script = script_of(qadapter, tmp_path)
    assert f"-l {paths[0]} -w {paths[1]} singleshot" in script
    assert "#SBATCH --ntasks=2" in script.splitlines()  # mpi_ranks' default, the full job
    assert Path(qadapter["logdir"]).is_dir()  # FireWorks' queue logger writes there


def test_cli_writes_the_files_into_the_data_dir_or_dir(cli_env, settings, tmp_path) -> None:
    done = subprocess.run(
        [SCREENER, "deploy", "launchpad"], env=cli_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    data = settings.data_dir.absolute()
    assert done.stdout.split() == [
        str(data / n) for n in (LAUNCHPAD_FILE, FWORKER_FILE, QADAPTER_FILE)
    ]
    launchpad = yaml.safe_load((data / LAUNCHPAD_FILE).read_text())
    assert launchpad["name"] == settings.db_name and (data / FWORKER_FILE).is_file()

    elsewhere = tmp_path / "site"
    done = subprocess.run(
        [SCREENER, "deploy", "launchpad", "--dir", str(elsewhere)],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    qadapter = yaml.safe_load((elsewhere / QADAPTER_FILE).read_text())
    assert f"-w {elsewhere / FWORKER_FILE} " in qadapter["rocket_launch"]


def test_cli_bad_walltime_is_one_error_line_and_writes_nothing(cli_env, tmp_path) -> None:
    target = tmp_path / "site"
    done = subprocess.run(
        [SCREENER, "deploy", "launchpad", "--dir", str(target)],
        env={**cli_env, "SCREENER_QUEUE_WALLTIME": "1h"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: invalid setting queue_walltime: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not target.exists()


@pytest.mark.parametrize(("name", "directive"), [("slurm", "#SBATCH"), ("pbs", "#PBS")])
def test_deploy_templates_render(name: str, directive: str, tmp_path: Path) -> None:
    path = Path(__file__).resolve().parents[2] / "deploy" / "fireworks" / f"my_qadapter_{name}.yaml"
    spec = yaml.safe_load(path.read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a key the template does not know would warn
        script = script_of(spec, tmp_path)
    assert f"{directive} " in script and "SCREENER_MPI_RANKS" in script
    rocket = [line for line in script.splitlines() if line.endswith(" singleshot")]
    assert len(rocket) == 1 and " -l /" in rocket[0] and " -w /" in rocket[0]  # absolute paths

"""One settings object for the whole service.

Values come, in increasing priority, from the defaults below, an optional YAML file named by
``SCREENER_CONFIG_FILE`` and ``SCREENER_*`` environment variables.  Tests override settings through
:func:`use_settings` only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from screener.errors import InputError
from screener.files import input_file

CONFIG_FILE_ENV = "SCREENER_CONFIG_FILE"


MAX_LOOP_INTERVAL = 86_400.0  # s: a day between daemon cycles at most
TARGET_LIMIT = 20.0  # eV: a target dE lies within +/- this
WINDOW_LIMIT = 5.0  # eV: the widest half width of a target window


class TargetWindow(BaseModel):
    """The screen's goal for one adsorbate: a hit has |dE - target| <= window (eV)."""

    model_config = ConfigDict(extra="forbid")

    target: float = Field(ge=-TARGET_LIMIT, le=TARGET_LIMIT)
    window: float = Field(gt=0.0, le=WINDOW_LIMIT)


class ScreenerSettings(BaseSettings):
    """Settings of a screener installation (units: eV and Angstrom)."""

    model_config = SettingsConfigDict(env_prefix="SCREENER_", extra="forbid", validate_default=True)

    # --- storage -----------------------------------------------------------------------------
    mongo_uri: str | None = Field(
        None, description="URI of a MongoDB server; unset = the data directory's own server"
    )
    db_name: str = Field("screener", description="database name (also FireWorks' LaunchPad)")
    data_dir: Path = Field(
        Path("screener-data"), description="home of the local database server, models, launches"
    )
    db_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="port of the local database server (unset: the recorded one, else a free one)",
    )

    # --- parallel enumeration ----------------------------------------------------------------
    dask_scheduler: str | None = Field(
        None, description="address of a running dask scheduler; unset = a local cluster"
    )
    dask_workers: int = Field(
        2, ge=0, description="local cluster processes; 0 = enumerate in this process"
    )

    # --- slab and site enumeration (Tran & Ulissi 2018 conventions) --------------------------
    max_miller: int = Field(2, ge=1, le=4, description="largest Miller index enumerated")
    slab_min_thickness: float = Field(7.0, gt=0, description="A")
    slab_min_width: float = Field(4.5, gt=0, description="A, both in-plane directions")
    slab_max_atoms: int = Field(80, gt=0)
    slab_vacuum: float = Field(10.0, gt=0, description="A of vacuum on each side")
    fix_below: float = Field(3.0, ge=0, description="atoms deeper than this (A) are fixed")

    # --- DFT workflows ------------------------------------------------------------------------
    mpi_ranks: int = Field(2, ge=1, description="MPI ranks per GPAW calculation")
    max_tries: int = Field(3, ge=1, le=10, description="tries per calculation (retry ladder)")
    prerelax: bool = Field(
        False, description="relax slabs and adslabs with EMT before GPAW (bench/dft_cost.py)"
    )
    # --- the loop ---------------------------------------------------------------------------
    launcher: Literal["local", "external", "slurm"] = Field(
        "local",
        description="local: the daemon runs FireWorks rockets in its own process; external: "
        "rlaunch/qlaunch elsewhere run them and the daemon only submits and ingests; slurm: "
        "the daemon submits Slurm jobs (FireWorks' queue launcher), each running one rocket",
    )
    loop_interval: float = Field(
        60.0, ge=0, le=MAX_LOOP_INTERVAL, description="s between daemon cycles"
    )
    loop_batch: int = Field(20, ge=1, description="most sites submitted per cycle")
    max_queued: int = Field(300, ge=1, description="READY+RUNNING jobs the daemon keeps queued")
    lease_stale_s: float = Field(
        300.0, gt=0, description="a daemon lease without heartbeat this long is taken over"
    )
    lostrun_hours: float = Field(
        4.0, gt=0, description="a RUNNING firework silent this long is lost and rerun"
    )

    # --- the cluster (launcher slurm; `screener deploy launchpad` writes the same qadapter) ----
    queue_partition: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.,-]+$", description="Slurm partition; unset: the default"
    )
    queue_account: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]+$", description="Slurm account; unset: none"
    )
    queue_walltime: str = Field(
        "01:00:00",
        pattern=r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$",
        description="walltime of a job ([D-]HH:MM:SS)",
    )
    queue_nodes: int = Field(1, ge=1, le=4096, description="nodes of an adsorbate+slab job")
    queue_small_ranks: int = Field(
        1, ge=1, description="MPI ranks of gas, bulk and slab jobs (adslab jobs get mpi_ranks)"
    )
    queue_pre_rocket: str = Field(
        "", description="shell lines run in each job before its rocket (modules, venv)"
    )
    queue_logdir: Path | None = Field(
        None, description="where jobs write their logs; unset: <data_dir>/queue"
    )
    dask_cluster: Literal["local", "slurm"] = Field(
        "local",
        description="where seeding and scoring run their dask work: local processes or "
        "dask-jobqueue's SLURMCluster (ignored when dask_scheduler is set)",
    )

    # --- the dashboard -------------------------------------------------------------------------
    dashboard_token: SecretStr | None = Field(
        None, description="bearer token of the dashboard's admin actions; unset: they answer 403"
    )

    # --- the screen's goal ---------------------------------------------------------------------
    targets: dict[str, TargetWindow] = Field(
        default_factory=dict,
        description="target dE and window per adsorbate (eV), overriding the adsorbate's default",
    )

    @field_validator("targets")
    @classmethod
    def _known_adsorbates(cls, value: dict[str, TargetWindow]) -> dict[str, TargetWindow]:
        from workflows.adsorbates import ADSORBATES

        unknown = sorted(set(value) - set(ADSORBATES))
        if unknown:
            raise ValueError(f"unknown adsorbate {unknown[0]!r} (known: {', '.join(ADSORBATES)})")
        return value

    def target_window(
        self, adsorbate: str, target: float | None = None, window: float | None = None
    ) -> TargetWindow:
        """The target and window of ``adsorbate``: ``target`` and ``window`` where given, else
        the setting, else the adsorbate's default; :class:`InputError` if a given value is out
        of :class:`TargetWindow`'s bounds (or not a number)."""
        from workflows.adsorbates import get_adsorbate

        if adsorbate in self.targets:
            goal = self.targets[adsorbate]
        else:
            try:
                entry = get_adsorbate(adsorbate)
            except ValueError as error:
                raise InputError(str(error)) from None
            goal = TargetWindow(target=entry.target, window=entry.window)
        if target is None and window is None:
            return goal
        target = goal.target if target is None else target
        window = goal.window if window is None else window
        try:
            return TargetWindow(target=target, window=window)
        except ValidationError as error:
            bounds = {
                "target": f"between {-TARGET_LIMIT:g} and {TARGET_LIMIT:g} eV",
                "window": f"> 0 and <= {WINDOW_LIMIT:g} eV",
            }
            name = str(error.errors()[0]["loc"][0])
            value = target if name == "target" else window
            raise InputError(
                f"the {adsorbate} {name} must be a number {bounds[name]} (got {value})"
            ) from None

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return Path(os.path.expanduser(str(value)))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


_override: ScreenerSettings | None = None


def load_settings(**overrides: Any) -> ScreenerSettings:
    """Build settings from the environment and the YAML file, raising :class:`InputError`."""
    if _override is not None and not overrides:
        return _override
    config_file = os.environ.get(CONFIG_FILE_ENV)
    if config_file:
        path = input_file(config_file, f"{CONFIG_FILE_ENV}={config_file}")
        try:
            content = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise InputError(f"{config_file}: not valid YAML ({exc.__class__.__name__})") from exc
        if content is not None and not isinstance(content, dict):
            raise InputError(f"{config_file}: expected a mapping of settings")
    try:
        return ScreenerSettings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise InputError(f"invalid setting {where}: {first['msg']}") from exc


@contextmanager
def use_settings(**values: Any) -> Iterator[ScreenerSettings]:
    """Make :func:`load_settings` return settings with ``values`` applied (tests use this)."""
    global _override
    previous = _override
    _override = None
    _override = load_settings(**values)
    try:
        yield _override
    finally:
        _override = previous

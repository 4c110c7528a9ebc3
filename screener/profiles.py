"""Calculator profiles as the control plane names them: by identity, ``<name>@<hash>``.

A user names a profile (``gpaw``); jobs, calculations, models and predictions are stored under
its identity (:attr:`workflows.profiles.Profile.identity`), which changes whenever the profile's
settings do.  So a campaign under edited settings computes every step anew, and its models train
on results of one identity only, while results of earlier settings stay readable under theirs.
"""

from __future__ import annotations

from screener.errors import InputError
from workflows.profiles import get_profile, split_identity


def identity(value: str) -> str:
    """The identity a profile name or identity stands for, to read results by.

    A name is this code's profile of that name; an identity with a known name is kept as it is,
    so that results of earlier settings can be read.  InputError otherwise.
    """
    try:
        name, digest = split_identity(value)
        profile = get_profile(name)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return profile.identity if digest is None else f"{name}@{digest}"


def current_identity(value: str, elements: list[str] | None = None) -> str:
    """The identity of this code's profile ``value`` names, to compute with; InputError for an
    identity of other settings or a profile that does not cover ``elements``."""
    try:
        profile = get_profile(value)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if elements:
        from ase import Atoms

        if not profile.covers(Atoms(elements)):
            raise InputError(
                f"calculator profile '{profile.name}' does not cover "
                f"{','.join(sorted(set(elements)))}; use gpaw"
            )
    return profile.identity

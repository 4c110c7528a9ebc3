"""The dashboard's read side and its input checks, against a real store."""

from __future__ import annotations

import datetime as dt

import pytest

from screener import views
from screener.dashboard import inputs
from screener.dashboard.inputs import BadRequest
from screener.errors import InputError
from workflows.profiles import PROFILES

EMT = PROFILES["emt"].identity


def _row(name: str, energy: float, *, elements=("Cu",), miller=(1, 1, 1), source="predicted"):
    target, window = -0.67, 0.1
    return views.CandidateRow(
        surface_id=name,
        surface=f"proto:{name}",
        bulk_formula="".join(elements),
        elements=tuple(elements),
        miller=tuple(miller),
        termination="0.0/top",
        adsorbate="CO",
        energy=energy,
        std=0.1 if source == "predicted" else 0.0,
        source=source,
        site_id=f"site-{name}",
        n_calculated=int(source == "calculated"),
        distance=abs(energy - target),
        in_window=abs(energy - target) <= window,
    )


ROWS = sorted(
    [
        _row("a", -0.70, elements=("Cu", "Pd")),
        _row("b", -0.60, elements=("Pd",), source="calculated"),
        _row("c", -0.20, elements=("Cu",), miller=(1, 0, 0)),
        _row("d", -0.66, elements=("Cu", "Pd"), miller=(1, 1, 0), source="calculated"),
    ],
    key=lambda r: r.distance,
)


def test_candidate_filters_keep_exactly_the_matching_rows():
    both = views.filter_candidates(ROWS, views.CandidateQuery(elements=("Cu", "Pd")))
    assert [r.surface_id for r in both] == ["d", "a"]  # nearest the target first
    assert [r.surface_id for r in views.filter_candidates(ROWS, views.CandidateQuery())] == [
        "d",
        "a",
        "b",
        "c",
    ]
    miller = views.filter_candidates(ROWS, views.CandidateQuery(miller=(1, 0, 0)))
    assert [r.surface_id for r in miller] == ["c"]
    calculated = views.filter_candidates(ROWS, views.CandidateQuery(source="calculated"))
    assert {r.surface_id for r in calculated} == {"b", "d"}
    window = views.filter_candidates(ROWS, views.CandidateQuery(in_window=True))
    assert {r.surface_id for r in window} == {"a", "d", "b"}  # |dE + 0.67| <= 0.1
    by_energy = views.filter_candidates(
        ROWS, views.CandidateQuery(sort_by="energy", descending=True)
    )
    assert [r.energy for r in by_energy] == [-0.20, -0.60, -0.66, -0.70]


@pytest.mark.parametrize(
    "kwargs",
    [{"sort_by": "$where"}, {"offset": -1}, {"limit": 0}, {"limit": 10_001}],
)
def test_impossible_candidate_queries_are_refused(kwargs):
    with pytest.raises(InputError):
        views.CandidateQuery(**kwargs)


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (inputs.space_name, '{"$ne": 1}'),
        (inputs.space_name, "Cu Pd"),
        (inputs.space_name, ""),
        (inputs.elements, "Cu,Xx"),
        (inputs.elements, "$gt"),
        (inputs.miller, "1;DROP"),
        (inputs.miller, "1111"),
        (inputs.adsorbate_name, "NH3"),
        (inputs.surface_key, "<script>"),
        (inputs.surface_key, "a" * 201),
    ],
)
def test_hostile_or_malformed_input_is_refused_in_one_line(check, value):
    with pytest.raises(BadRequest) as refused:
        check(value)
    assert "\n" not in str(refused.value)


def test_valid_input_becomes_plain_values():
    assert inputs.elements("Cu, Pd-Pt") == ("Cu", "Pd", "Pt")
    assert inputs.elements("") == ()
    assert inputs.miller("1,1,0") == (1, 1, 0)
    assert inputs.miller("-1 1 0") == (-1, 1, 0)
    assert inputs.miller("111") == (1, 1, 1)
    assert inputs.miller(None) is None
    assert inputs.number("target", "-0.67", -20, 20) == -0.67
    assert inputs.number("target", "", -20, 20) is None
    for bad in ("nan", "inf", "abc", "21"):
        with pytest.raises(BadRequest):
            inputs.number("target", bad, -20, 20)


def test_token_check(settings):
    from pydantic import SecretStr

    assert inputs.check_token(settings, "anything")[0] == 403  # no token configured
    configured = settings.model_copy(update={"dashboard_token": SecretStr("t0ken")})
    assert inputs.check_token(configured, None)[0] == 401
    assert inputs.check_token(configured, "t0ke")[0] == 401
    assert inputs.check_token(configured, "t0ken") is None


def _prospective(cycle: int, predicted: float, std: float, calculated: float):
    return views.Prospective(
        job_key=f"j{cycle}-{predicted}",
        site_id="s",
        adsorbate="CO",
        cycle=cycle,
        model_version=cycle,
        predicted=predicted,
        std=std,
        calculated=calculated,
        finished=dt.datetime(2026, 1, 1),
    )


def test_learning_curve_and_calibration_are_computed_from_the_prospective_errors():
    points = [
        _prospective(1, -0.5, 0.1, -0.7),  # error 0.2 = 2 std: outside the 90% interval
        _prospective(1, -0.5, 0.1, -0.55),  # 0.05: inside
        _prospective(2, -0.6, 0.1, -0.62),  # 0.02: inside
    ]
    curve = views.learning_curve(points)
    assert [(c.cycle, c.calculations, c.n) for c in curve] == [(1, 2, 2), (2, 3, 1)]
    assert curve[0].mae == pytest.approx(0.125)
    assert curve[0].coverage90 == pytest.approx(0.5)
    assert curve[1].coverage90 == 1.0
    # with every result: the random picks of cycle 1 (no prediction) count as calculations
    found = [
        views.Result(p.job_key, "s", "CO", p.cycle, p.calculated, None, p.predicted, p.std, 1)
        for p in points
    ] + [views.Result(f"r{i}", "s", "CO", 1, -0.3, None, None, None, None) for i in range(4)]
    assert [c.calculations for c in views.learning_curve(points, found)] == [6, 7]
    hits = views.hits_curve(found, -0.67, 0.1)
    assert [(h.cycle, h.calculations, h.hits) for h in hits] == [(1, 6, 1), (2, 7, 2)]
    levels = {p.nominal: p.observed for p in views.calibration(points)}
    assert levels[0.1] == 0.0  # |z| = 2, 0.5, 0.2: none within 0.126
    assert levels[0.5] == pytest.approx(2 / 3)  # within 0.674: 0.5 and 0.2
    assert levels[0.99] == 1.0


def test_jobs_view_shows_failures_with_their_rungs_and_time_per_step(settings):
    from screener.enumerate.seed import plan_seed, seed
    from screener.store import Bulk, open_store
    from screener.store.documents import Calculation

    with open_store(settings) as store:
        seed(plan_seed("Cu", "CO", max_miller=1, settings=settings), store)
        bulk = Bulk.objects.first()
        history = [
            {"try": 1, "reason": "scf", "action": "mixer halved"},
            {"try": 2, "reason": "scf", "action": "smearing doubled"},
        ]
        Calculation(
            key=f"slab:x:{EMT}",
            kind="slab",
            profile=EMT,
            state="failed",
            reason="scf",
            history=history,
            bulk=bulk,
        ).save()
        for wall, steps in ((2.0, 10), (4.0, 30)):
            Calculation(
                key=f"bulk:{wall}:{EMT}",
                kind="bulk",
                profile=EMT,
                state="done",
                wall_time=wall,
                ionic_steps=steps,
                bulk=bulk,
                history=history[:1],
            ).save()
        view = views.jobs_view("Cu", profile="emt")
        with pytest.raises(InputError):
            views.jobs_view("Nope")
    [failure] = view.failures
    assert (failure.kind, failure.reason) == ("slab", "scf")
    assert [a.action for a in failure.retries] == ["mixer halved", "smearing doubled"]
    [bulk_time] = view.times
    assert (bulk_time.kind, bulk_time.n, bulk_time.mean_wall_s) == ("bulk", 2, 3.0)
    assert bulk_time.mean_ionic_steps == 20.0
    assert view.retried == 2


def test_recent_cycles_are_newest_first_and_filtered_by_profile(settings):
    from screener.enumerate.seed import plan_seed, seed
    from screener.store import open_store
    from screener.store.documents import Cycle

    with open_store(settings) as store:
        seed(plan_seed("Cu", "CO", max_miller=1, settings=settings), store)
        gpaw = PROFILES["gpaw"].identity
        for number, profile in ((1, EMT), (2, gpaw), (3, EMT)):
            Cycle(space="Cu", profile=profile, number=number, seconds=float(number)).save()
        every = views.recent_cycles("Cu")
        emt = views.recent_cycles("Cu", profile="emt")
        last = views.recent_cycles("Cu", n=1)
    assert [(c.number, c.profile) for c in every] == [(3, EMT), (2, gpaw), (1, EMT)]
    assert [c.number for c in emt] == [3, 1]
    assert [c.number for c in last] == [3]


def test_a_surface_without_a_model_says_so(settings):
    from screener.enumerate.seed import plan_seed, seed
    from screener.store import Surface, open_store

    with open_store(settings) as store:
        seed(plan_seed("Cu", "CO,H", max_miller=1, settings=settings), store)
        key = Surface.objects.first().key
        view = views.surface_view(store, "Cu", key, profile="emt")
    assert view.unmodelled == ("CO", "H")
    assert view.sites and all(s.predicted is None for s in view.sites)

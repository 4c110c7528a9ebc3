"""MongoDB documents (mongoengine) for element spaces, bulks, surfaces and adsorption sites.

Identity is carried by string keys built from what defines an object, so that seeding is idempotent:

* bulk: ``Bulk.key`` (prototype bulks: ``proto:<prototype>:<formula>``; imported bulks: a hash of
  the standardised primitive cell);
* surface: (bulk, Miller index, termination), termination = ``"<shift>/<side>"``;
* site: (surface, adsorbate, position key).

On a real MongoDB these keys are unique indexes (created by :func:`ensure_indexes`).  The embedded
mongomock store checks uniqueness by a full scan on every insert (quadratic), so there it relies on
the single-writer lock and on the seeding code looking keys up before it inserts.

Later issues add calculations and model versions beside these; a site's ``state`` and ``labels``
fields are where the loop will record what happened to it.
"""

from __future__ import annotations

import datetime as dt

from mongoengine import (
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    FloatField,
    IntField,
    ListField,
    ObjectIdField,
    ReferenceField,
    StringField,
)

SITE_TYPES = ("ontop", "bridge", "fcc", "hcp", "4-fold")
SITE_STATES = ("open", "queued", "running", "done", "failed")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class ElementSpace(Document):
    """A named set of elements whose unary and binary bulks are screened together."""

    name = StringField(required=True)
    elements = ListField(StringField(), required=True)
    adsorbates = ListField(StringField())
    bulks = ListField(ObjectIdField())
    created = DateTimeField(default=_now)
    updated = DateTimeField(default=_now)

    meta = {
        "collection": "spaces",
        "auto_create_index": False,
        "indexes": [{"fields": ["name"], "unique": True}],
    }


class Bulk(Document):
    """A bulk crystal (prototype or imported); structure as :func:`workflows.structures` dict."""

    key = StringField(required=True)
    formula = StringField(required=True)
    elements = ListField(StringField(), required=True)
    prototype = StringField(required=True)
    spacegroup = StringField()
    spacegroup_number = IntField()
    natoms = IntField()
    volume_per_atom = FloatField()
    structure = DictField(required=True)
    lattice_rule = StringField()
    source = StringField()
    # "<enumeration settings hash>:<adsorbate>" for every completed enumeration of this bulk
    enumerated = ListField(StringField())
    created = DateTimeField(default=_now)

    meta = {
        "collection": "bulks",
        "auto_create_index": False,
        "indexes": [{"fields": ["key"], "unique": True}, "elements"],
    }


class Surface(Document):
    """One termination of one Miller plane of a bulk, as a slab whose top side is the surface."""

    key = StringField(required=True)
    bulk = ReferenceField(Bulk, required=True)
    bulk_formula = StringField()
    miller = ListField(IntField(), required=True)
    termination = StringField(required=True)
    shift = FloatField()
    side = StringField(choices=("top", "bottom"))
    structure = DictField(required=True)
    natoms = IntField()
    thickness = FloatField()
    area = FloatField()
    repeat = ListField(IntField())
    top_composition = DictField()
    adsorbates = ListField(StringField())
    created = DateTimeField(default=_now)

    meta = {
        "collection": "surfaces",
        "auto_create_index": False,
        "indexes": [
            {"fields": ["bulk", "miller", "termination"], "unique": True},
            {"fields": ["key"], "unique": True},
        ],
    }


class Site(Document):
    """A symmetry-unique adsorption site of one adsorbate on the top side of a surface."""

    surface = ReferenceField(Surface, required=True)
    bulk = ReferenceField(Bulk, required=True)
    adsorbate = StringField(required=True)
    site_type = StringField(required=True, choices=SITE_TYPES)
    position = ListField(FloatField(), required=True)
    position_key = StringField(required=True)
    adsorbate_position = ListField(FloatField())
    binding_atoms = ListField(IntField())
    binding_elements = ListField(StringField())
    composition = DictField()
    multiplicity = IntField()
    fingerprint = DictField()
    miller = ListField(IntField())
    bulk_formula = StringField()
    state = StringField(default="open", choices=SITE_STATES)
    created = DateTimeField(default=_now)

    meta = {
        "collection": "sites",
        "auto_create_index": False,
        "indexes": [
            {"fields": ["surface", "adsorbate", "position_key"], "unique": True},
            ("bulk", "adsorbate"),
            ("adsorbate", "state"),
        ],
    }


JOB_STATES = ("submitting", "submitted", "done", "failed")
CALCULATION_KINDS = ("bulk", "slab", "gas", "adslab")


class Job(Document):
    """The ledger: one adsorption-energy workflow per (site, profile), recorded before submission.

    ``key`` is ``"<site id>:<profile>"`` (a site belongs to one adsorbate).  A job is inserted in
    state ``submitting`` and committed before its FireWorks workflow is added; the workflow's
    fireworks carry the key, so a submitter that died in between is reconciled from FireWorks.
    """

    key = StringField(required=True)
    site = ReferenceField(Site, required=True)
    adsorbate = StringField(required=True)
    profile = StringField(required=True)
    state = StringField(required=True, choices=JOB_STATES)
    fw_ids = ListField(IntField())
    reason = StringField()
    # what the surrogate predicted when the loop chose this site (None: chosen by hand or random)
    predicted = DictField()
    space = StringField()
    cycle = IntField()
    created = DateTimeField(default=_now)
    updated = DateTimeField(default=_now)

    meta = {
        "collection": "jobs",
        "auto_create_index": False,
        "indexes": [{"fields": ["key"], "unique": True}, ("state", "profile"), "site"],
    }


class Calculation(Document):
    """A finished or failed calculation, ingested from FireWorks (one per step key).

    Step keys: ``gas:<molecule>:<profile>``, ``bulk:<bulk key>:<profile>``,
    ``slab:<surface key>:<profile>``, ``adslab:<site id>:<profile>``.  An adslab calculation
    carries the adsorption energy and its anomaly flags.
    """

    key = StringField(required=True)
    kind = StringField(required=True, choices=CALCULATION_KINDS)
    profile = StringField(required=True)
    state = StringField(required=True, choices=("done", "failed"))
    reason = StringField()
    energy = FloatField()
    structure = DictField()
    max_force = FloatField()
    ionic_steps = IntField()
    wall_time = FloatField()
    converged = BooleanField()
    settings_hash = StringField()
    settings = DictField()
    code_versions = DictField()
    history = ListField(DictField())
    fw_id = IntField()
    launch_id = IntField()
    bulk = ReferenceField(Bulk)
    surface = ReferenceField(Surface)
    site = ReferenceField(Site)
    adsorbate = StringField()
    adsorption_energy = FloatField()
    references = DictField()
    flags = ListField(StringField())
    final_site = DictField()
    # the surrogate's view of a finished adslab: fingerprint of the relaxed structure (for an
    # import with initial_binding: of the site it started from; training knows the loop's own
    # results by their Site's fingerprint), CV group (surface key) and, for imported results,
    # the space they warm-start and their source file
    fingerprint = DictField()
    initial_binding = ListField(IntField())
    group = StringField()
    pure = StringField()
    space = StringField()
    source = StringField()
    created = DateTimeField(default=_now)

    meta = {
        "collection": "calculations",
        "auto_create_index": False,
        "indexes": [
            {"fields": ["key"], "unique": True},
            ("kind", "profile", "state"),
            "site",
        ],
    }


class ModelVersion(Document):
    """A trained surrogate for one (space, adsorbate, profile): metrics, provenance and the model.

    ``version`` counts up per (space, adsorbate, profile).  ``data_key`` is a hash of the training
    rows' calculation keys, so a retrain is skipped when nothing new arrived.  The pickled model
    lives in ``<data_dir>/models/<file>`` (``sha256`` checks it); on a cluster ``data_dir`` is on a
    shared filesystem.
    """

    space = StringField(required=True)
    adsorbate = StringField(required=True)
    profile = StringField(required=True)
    version = IntField(required=True)
    n_train = IntField(required=True)
    data_key = StringField(required=True)
    model = StringField()
    feature_set = StringField()
    cv = DictField()
    info = DictField()
    file = StringField(required=True)
    sha256 = StringField(required=True)
    fit_seconds = FloatField()
    created = DateTimeField(default=_now)

    meta = {
        "collection": "models",
        "auto_create_index": False,
        "indexes": [
            {"fields": ["space", "adsorbate", "profile", "version"], "unique": True},
        ],
    }


class PredictionChunk(Document):
    """Predictions of one model version for up to CHUNK sites: parallel arrays.

    One document per chunk instead of per site keeps a scoring pass over a million sites to a
    hundred writes; the latest version's chunks are what selection and ``candidates`` read.
    """

    model = ReferenceField(ModelVersion, required=True)
    space = StringField(required=True)
    adsorbate = StringField(required=True)
    profile = StringField(required=True)
    version = IntField(required=True)
    chunk = IntField(required=True)
    sites = ListField(StringField())
    mean = ListField(FloatField())
    std = ListField(FloatField())
    created = DateTimeField(default=_now)

    meta = {
        "collection": "predictions",
        "auto_create_index": False,
        "indexes": [("space", "adsorbate", "profile", "version", "chunk")],
    }


class Lease(Document):
    """Leadership of one space's daemon: whoever holds a fresh heartbeat owns the loop."""

    space = StringField(required=True)
    owner = StringField(required=True)  # host:pid:token
    acquired = DateTimeField(default=_now)
    heartbeat = DateTimeField(default=_now)
    state = StringField()  # what the daemon is doing: cycling, sleeping, paused, stopped
    released = BooleanField(default=False)

    meta = {
        "collection": "leases",
        "auto_create_index": False,
        "indexes": [{"fields": ["space"], "unique": True}],
    }


class Cycle(Document):
    """One cycle of a space's daemon: counts, timings (s) and model versions."""

    space = StringField(required=True)
    profile = StringField(required=True)
    number = IntField(required=True)
    owner = StringField()
    started = DateTimeField(default=_now)
    seconds = FloatField()
    timings = DictField()
    counts = DictField()
    models = DictField()
    queued = IntField()
    jobs = DictField()  # the space's jobs of the profile by state, after the cycle

    meta = {
        "collection": "cycles",
        "auto_create_index": False,
        "indexes": [("space", "number")],
    }


DOCUMENTS: tuple[type[Document], ...] = (
    ElementSpace,
    Bulk,
    Surface,
    Site,
    Job,
    Calculation,
    ModelVersion,
    PredictionChunk,
    Lease,
    Cycle,
)


def ensure_indexes() -> None:
    """Create every document's indexes (real MongoDB servers; idempotent)."""
    for document in DOCUMENTS:
        document.ensure_indexes()

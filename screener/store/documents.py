"""MongoDB documents (mongoengine) for element spaces, bulks, surfaces and adsorption sites.

Identity is carried by string keys built from what defines an object, so that seeding is idempotent:

* bulk: ``Bulk.key`` (prototype bulks: ``proto:<prototype>:<formula>``; imported bulks: a hash of
  the standardised primitive cell);
* surface: (bulk, Miller index, termination), termination = ``"<shift>/<side>"``;
* site: (surface, adsorbate, position key).

These keys are unique indexes (created by :func:`ensure_indexes` on every server), so two
writers can never store one object twice.  Every field that is written is declared here.

Reads at scale go through counters kept where the writes happen (a bulk's ``n_surfaces`` and
``n_sites``, set when its enumeration is stored) and through indexed, projected queries; nothing
on the read side counts sites one by one.
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

from screener.names import SITE_TYPES

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
    # counters kept by seeding: stored surfaces, and sites per adsorbate
    n_surfaces = IntField(default=0)
    n_sites = DictField()
    # per adsorbate, the fingerprint version every stored site of this bulk has (set by seeding
    # when it stores or upgrades them; missing on bulks seeded before it was kept: version 0)
    fingerprint_versions = DictField()
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
        # key = "<bulk key>|<hkl>|<termination>" is the identity.  No unique index on
        # (bulk, miller, termination): miller is an array, so such an index is multikey and
        # MongoDB would make each Miller digit unique per bulk and termination.
        "indexes": [{"fields": ["key"], "unique": True}, "bulk"],
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

    ``key`` is ``"<site id>:<profile identity>"`` (a site belongs to one adsorbate; the
    identity, ``name@hash``, changes with the profile's settings, :mod:`screener.profiles`).  A
    job is inserted in state ``submitting`` and committed before its FireWorks workflow is added;
    the workflow's fireworks carry the key, so a submitter that died in between is reconciled
    from FireWorks.
    """

    key = StringField(required=True)
    site = ReferenceField(Site, required=True)
    bulk = ReferenceField(Bulk)  # the site's bulk: a space's jobs are those of its bulks
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
        "indexes": [
            {"fields": ["key"], "unique": True},
            ("state", "profile"),
            "site",
            ("bulk", "profile", "state"),
        ],
    }


class Calculation(Document):
    """A finished or failed calculation, ingested from FireWorks (one per step key).

    Step keys: ``gas:<molecule>:<profile>``, ``bulk:<bulk key>:<profile>``,
    ``slab:<surface key>:<profile>``, ``adslab:<site id>:<profile>``, where ``<profile>`` is the
    profile's identity (``emt@6f44ac5c``): a step of other settings has another key.  An adslab
    calculation carries the adsorption energy and its anomaly flags.
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
            ("bulk", "kind"),
            "space",
        ],
    }


class ModelVersion(Document):
    """A trained surrogate for one (space, adsorbate, profile): metrics, provenance and the model.

    ``profile`` is the identity (``name@hash``) of the settings of every result it trained on.
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
    scored_sites = IntField()  # sites its stored predictions cover (scored in `train`)
    scored = DateTimeField()
    created = DateTimeField(default=_now)

    meta = {
        "collection": "models",
        "auto_create_index": False,
        "indexes": [
            {"fields": ["space", "adsorbate", "profile", "version"], "unique": True},
        ],
    }


class PredictionChunk(Document):
    """Predictions of one model version for up to CHUNK sites or surfaces: aligned arrays.

    ``level="site"``: every site of the space (``sites``, their ``surfaces``, ``mean``, ``std``),
    what selection reads.  ``level="surface"``: for every surface its lowest-predicted site, what
    ``candidates`` reads.  One document per chunk instead of per site keeps a scoring pass over a
    million sites to a few dozen writes, and reading them back to as many documents.
    """

    model = ReferenceField(ModelVersion, required=True)
    space = StringField(required=True)
    adsorbate = StringField(required=True)
    profile = StringField(required=True)
    version = IntField(required=True)
    chunk = IntField(required=True)
    level = StringField(required=True, choices=("site", "surface"), default="site")
    sites = ListField(StringField())
    surfaces = ListField(StringField())
    mean = ListField(FloatField())
    std = ListField(FloatField())
    created = DateTimeField(default=_now)

    meta = {
        "collection": "predictions",
        "auto_create_index": False,
        "indexes": [("space", "adsorbate", "profile", "version", "level", "chunk")],
    }


class Lease(Document):
    """Leadership of one space's daemon: whoever holds a fresh heartbeat owns the loop."""

    space = StringField(required=True)
    owner = StringField(default="")  # host:pid:token; "" until a daemon first takes it
    acquired = DateTimeField()
    heartbeat = DateTimeField()
    state = StringField()  # what the daemon is doing: cycling, sleeping, paused, stopped
    released = BooleanField(default=False)
    paused = BooleanField(default=False)  # set by `screener pause`, read before every cycle

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


# indexes of earlier versions that must not stay (the multikey Surface index, see Surface.meta)
RETIRED_INDEXES = {Surface: ("bulk_1_miller_1_termination_1",)}


def ensure_indexes() -> None:
    """Create every document's indexes and drop retired ones (idempotent)."""
    for document, names in RETIRED_INDEXES.items():
        existing = document._get_collection().index_information()
        for name in names:
            if name in existing:
                document._get_collection().drop_index(name)
    for document in DOCUMENTS:
        document.ensure_indexes()

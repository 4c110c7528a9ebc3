"""Names shared by the site finder, the documents and the command line, in a module that imports
nothing, so that the CLI can offer them as choices at no start-up cost."""

from __future__ import annotations

#: site types the site finder gives, in its order (the documents' choices)
SITE_TYPES = ("ontop", "bridge", "fcc", "hcp", "4-fold")

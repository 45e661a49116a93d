"""The VLN-CE episode measures, under the name the docs and user scripts have used: they live in
:mod:`vidnav.metrics` (below the simulator, which scores its episodes with them)."""

from vidnav.metrics import *  # noqa: F401,F403
from vidnav.metrics import __all__  # noqa: F401

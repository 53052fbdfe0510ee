# The fixtures live in sites.py (named for what they are; a second conftest module would clash with tests/ in mypy).
from sites import *  # noqa: F403

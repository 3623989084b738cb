"""Moved to anytls_ref/probe/rawpeer.py (the ``probe`` command uses the scripted peers at run
time). Re-exported here so an old ``from rawpeer import ...`` keeps working; new code imports
from the package."""

from anytls_ref.probe.rawpeer import *  # noqa: F401,F403
from anytls_ref.probe.rawpeer import RawClient, RawServer, connect_v2, eventually, frame  # noqa: F401

"""anytls_ref.tools — programs built on the pure layer that print or read files.

* ``inspect_padding``: ``anytls-ref padding``, a padding scheme's md5, entries, sampled plans
  and simulated record splits, printed without a network.
* ``spec_report``: ``python -m anytls_ref.tools.spec_report``, the requirement → code → tests
  table (spec_notes/requirements.md), made by reading the source tree.
* ``pipes``: printing into ``| head``: the reader's going ends the output quietly.

They may import the pure modules; no pure module imports them (tests/test_architecture.py).
"""

"""
Development-only tooling, installed by the ``local`` and ``test`` settings and never by ``production``.

- ``emulator/``: the local stand-in for enterprise-subsidy, enterprise-catalog and the LMS, over real HTTP.
- ``demo.py``: the demo world (customer, learners, policies of every type) the demo and the tests seed.
- ``tokens.py``: minting signed development JWTs.
- ``net.py``: free ports, whether a port can be used and who listens on it, waiting for a local server.
- ``management/commands/``: ``run_upstream_emulator``, ``seed_demo``, ``run_demo``, ``mint_jwt``.

This package sits beside the service's layers: it may import any of them; nothing under ``apps/`` imports it
outside tests (see ``docs/decisions/0009-layers-and-development-tooling.rst``).
"""

"""Faithful fakes of the platforms and a trading generator.

Nothing under this package may be imported by production code (pipelines.defs, pipelines.connectors,
pipelines.intake, pipelines.store, pipelines.domain); a test enforces it.
"""

"""CLI command modules; each defines ``register(app)``. See :mod:`scalelaw.cli`."""

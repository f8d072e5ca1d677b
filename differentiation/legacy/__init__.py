"""The legacy primal/adjoint form and the SR-9395 migration passes, one module a pass."""

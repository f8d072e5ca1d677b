"""silopt: the pass runner's command line, and the workbench from Python (``silopt.load``)."""

from silopt.api import GradientCheckError, Workbench, load
from silopt.driver import main

__all__ = ["GradientCheckError", "Workbench", "load", "main"]

"""silopt: the pass runner's command line."""

from silopt.driver import main

__all__ = ["main"]

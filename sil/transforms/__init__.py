"""Generic transforms; importing this package registers them."""

from sil.transforms import cse, dce

__all__ = ["cse", "dce"]

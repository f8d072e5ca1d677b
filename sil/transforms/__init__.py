"""Generic transforms; importing this package registers them."""

from sil.transforms import dce

__all__ = ["dce"]

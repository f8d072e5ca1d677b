"""Generic transforms; importing this package registers them."""

from sil.transforms import canonicalize, cse, dce, simplify_cfg

__all__ = ["canonicalize", "cse", "dce", "simplify_cfg"]

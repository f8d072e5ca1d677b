"""Generic transforms; importing this package registers them."""

from sil.transforms import canonicalize, cse, dce, dead_function_elim, inline, licm, optimize, simplify_cfg

__all__ = ["canonicalize", "cse", "dce", "dead_function_elim", "inline", "licm", "optimize", "simplify_cfg"]

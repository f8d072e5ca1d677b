"""Generic transforms; importing this package registers them."""

from sil.transforms import canonicalize, cse, dce, dead_function_elim, licm, optimize, simplify_cfg, sroa

__all__ = ["canonicalize", "cse", "dce", "dead_function_elim", "licm", "optimize", "simplify_cfg", "sroa"]

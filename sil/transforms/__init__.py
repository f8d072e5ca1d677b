"""Generic transforms; importing this package registers them."""

from sil.transforms import (
    canonicalize,
    closure_specialize,
    cse,
    dce,
    dead_function_elim,
    defunctionalize,
    inline,
    licm,
    loop_unroll,
    optimize,
    simplify_cfg,
    sroa,
)

__all__ = [
    "canonicalize",
    "closure_specialize",
    "cse",
    "dce",
    "dead_function_elim",
    "defunctionalize",
    "inline",
    "licm",
    "loop_unroll",
    "optimize",
    "simplify_cfg",
    "sroa",
]

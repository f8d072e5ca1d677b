"""The legacy primal/adjoint form (``[reverse_differentiable]``, SIL-SPEC §6) and the SR-9395
migration passes, one module a pass.

The core knows nothing of this form: importing this package registers what it describes with what
checks and answers it, the verifier's check of the attribute (``verification.py``) and the
``gradient`` of a function still in the form (``pairs.py``). Every pass module here imports it,
so a lookup of passes (which imports them all) makes both active; and the verifier, meeting an
attribute it has no check for, looks the passes up before it reports one missing.
"""

from __future__ import annotations

from differentiation.legacy.pairs import legacy_gradient
from differentiation.legacy.verification import LegacyAttributeChecker
from differentiation.requests import register_gradient_form
from sil.ir import LegacyDifferentiableAttr
from sil.verifier import register_attribute_checker

register_attribute_checker(LegacyDifferentiableAttr, LegacyAttributeChecker)
register_gradient_form(legacy_gradient)

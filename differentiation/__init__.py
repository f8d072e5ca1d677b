"""The differentiation transforms: JVP/VJP emitters, lowering, and the legacy migration passes."""

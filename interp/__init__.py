"""The interpreter: runs any verified (lowered) module."""

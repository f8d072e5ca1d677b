"""Analyses over the IR (activity, call graph, liveness): facts about a module, never changes."""

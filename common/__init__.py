"""Leaf helpers shared by every layer: text cleaning, atomic file writes, where things live.

Nothing here imports another Lantern package, so any package may import it without a cycle.
"""

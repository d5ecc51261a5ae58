"""Experiments as declared configs: one per paper table or figure."""

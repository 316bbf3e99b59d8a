"""Labelling batches of many objects on Ray (nerfreg-batch)."""

"""Datasets in and out: meshes, the procedural part, rendering, nerfstudio and BOP formats."""

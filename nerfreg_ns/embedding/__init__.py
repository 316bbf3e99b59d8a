"""SurfEmb-style dense 2D-3D correspondence embeddings (Haugaard & Buch, CVPR 2022).

A U-Net maps each image pixel to a query vector, an MLP maps each (normalised) surface point
to a key vector, and an InfoNCE loss makes the query of a pixel score highest against the key
of the surface point it sees. Matching queries against keys then gives 2D-3D correspondences
on texture-less objects.
"""

"""nerfreg: register two image sequences of a texture-less object into one labelled object.

Importing this package stays cheap (no torch, no open3d): console scripts import what they use.
"""

__version__ = "0.1.0"

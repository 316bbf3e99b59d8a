"""The `nerfreg-feature` nerfstudio method: an object NeRF on a carved dense grid, with a
SurfEmb-style key head and a query encoder trained in the same run.

Imported by nerfstudio's method discovery before any checkpoint is loaded, which is why the
torch >= 2.6 `weights_only` allow-list is extended here: nerfstudio checkpoints hold numpy
scalars, and ns-viewer, ns-export and --load-dir would otherwise fail to unpickle them.
"""

from __future__ import annotations

import numpy as np
import torch


def _allow_numpy_in_checkpoints() -> None:
    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is None:  # torch < 2.4 loads everything anyway
        return
    allowed = [np.dtype, np.ndarray, type(np.dtype(np.float64)), type(np.dtype(np.float32)),
               type(np.dtype(np.int64)), np.float64, np.float32, np.int64, np.int32, np.bool_]
    try:
        import numpy._core.multiarray as multiarray  # numpy >= 2
    except ImportError:
        import numpy.core.multiarray as multiarray
    allowed += [multiarray.scalar, multiarray._reconstruct]
    add(allowed)


_allow_numpy_in_checkpoints()

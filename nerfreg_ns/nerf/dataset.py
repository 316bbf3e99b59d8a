"""NerfregDataset: images composited on black, with the object mask as a per-pixel target.

nerfstudio's own mask handling only restricts where pixels are sampled; nerfreg needs the
mask as supervision (background rays must render transparent), so it travels as the image's
fourth channel: nerfstudio's ray sampler gathers the image's channels together for images of
any size (a separate per-pixel entry breaks its sampler when a sequence mixes image sizes).
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import torch

from nerfstudio.data.datasets.base_dataset import InputDataset

from nerfreg_ns.data.images import read_mask


class NerfregDataset(InputDataset):
    def get_metadata(self, data: Dict) -> Dict:
        image = data["image"]
        files = self.metadata.get("fg_mask_filenames")
        if files:
            fg = torch.from_numpy(read_mask(files[data["image_idx"]]).astype(np.float32))[..., None]
            if fg.shape[:2] != image.shape[:2]:  # the dataset was downscaled
                fg = torch.nn.functional.interpolate(fg.permute(2, 0, 1)[None], size=image.shape[:2], mode="nearest")[0].permute(1, 2, 0)
        else:  # RGBA input: the alpha is the mask
            fg = (image[..., 3:4] > 0.5).float()
        return {"image": torch.cat([image[..., :3] * fg, fg], -1)}


def split_image(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A NerfregDataset image (..., 4) -> colour (..., 3) composited on black, mask (..., 1) in {0, 1}."""
    return image[..., :3], image[..., 3:4]

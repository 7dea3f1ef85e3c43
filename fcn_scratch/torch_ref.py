"""The seed's PyTorch FCN-32s / FCN-16s / FCN-8s, with widths as parameters (needs the ``compare`` extra).

Written line by line from the PyTorch FCN classes of the study notes this project grew from:
``CBR`` blocks (``nn.Sequential(Conv2d, ReLU)``) for the backbone, ceil-mode
pooling, 1x1 ``fc6``/``fc7`` (inside a CBR in FCN-32s, bare ``Conv2d`` + ReLU in
16s/8s), and the transposed convolutions ``k64 s32 p16``, ``k4 s2 p1``,
``k32 s16 p8``, ``k16 s8 p4``. The seed hard-codes VGG16's widths; here
``widths``, ``convs_per_block`` and ``fc_channels`` are parameters. Only for
parity tests and benchmarks: the engine never imports it.

``to_torch_state_dict(model, torch_model)`` / ``from_torch_state_dict(sd)``
translate names: the seed's ``nn.Sequential`` adds a ``.0``
(``conv1_1.0.weight``) that ours omits.
"""

from __future__ import annotations

import re

import numpy as np
import torch
from torch import nn

VGG = dict(widths=(64, 128, 256, 512, 512), convs_per_block=(2, 2, 3, 3, 3), fc_channels=4096)


def CBR(in_channels, out_channels, kernel_size=3, stride=1, padding=1):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding),
        nn.ReLU(inplace=True),
    )


class _SeedBackbone(nn.Module):
    """conv{b}_{i} = CBR(...), pool{b} = MaxPool2d(2, stride=2, ceil_mode=True), in the seed's order."""

    def _backbone(self, in_channels, widths, convs_per_block, score_after=()):
        cin = in_channels
        for b in range(1, 6):
            for i in range(1, convs_per_block[b - 1] + 1):
                setattr(self, f"conv{b}_{i}", CBR(cin, widths[b - 1]))
                cin = widths[b - 1]
            setattr(self, f"pool{b}", nn.MaxPool2d(2, stride=2, ceil_mode=True))
            if b in score_after:
                setattr(self, f"score_pool{b}_fr", nn.Conv2d(cin, self.num_classes, kernel_size=1))
        return cin

    def block(self, b, h):
        for i in range(1, self.convs_per_block[b - 1] + 1):
            h = getattr(self, f"conv{b}_{i}")(h)
        return getattr(self, f"pool{b}")(h)


class TorchFCN32s(_SeedBackbone):
    def __init__(self, num_classes, in_channels=3, widths=VGG["widths"], convs_per_block=VGG["convs_per_block"],
                 fc_channels=4096):
        super().__init__()
        self.num_classes, self.convs_per_block = num_classes, convs_per_block
        cin = self._backbone(in_channels, widths, convs_per_block)
        self.fc6 = CBR(cin, fc_channels, 1, 1, 0)
        self.drop6 = nn.Dropout2d()
        self.fc7 = CBR(fc_channels, fc_channels, 1, 1, 0)
        self.drop7 = nn.Dropout2d()
        self.score_fr = nn.Conv2d(fc_channels, num_classes, kernel_size=1, stride=1, padding=0)
        self.upscore32 = nn.ConvTranspose2d(num_classes, num_classes, kernel_size=64, stride=32, padding=16)

    def forward(self, x):
        h = x
        for b in range(1, 6):
            h = self.block(b, h)
        h = self.drop6(self.fc6(h))
        h = self.drop7(self.fc7(h))
        h = self.score_fr(h)
        return self.upscore32(h)


class TorchFCN16s(_SeedBackbone):
    def __init__(self, num_classes, in_channels=3, widths=VGG["widths"], convs_per_block=VGG["convs_per_block"],
                 fc_channels=4096):
        super().__init__()
        self.num_classes, self.convs_per_block = num_classes, convs_per_block
        self.relu = nn.ReLU(inplace=True)
        cin = self._backbone(in_channels, widths, convs_per_block, score_after=(4,))
        self.fc6 = nn.Conv2d(cin, fc_channels, 1)
        self.relu6 = nn.ReLU(inplace=True)
        self.drop6 = nn.Dropout2d()
        self.fc7 = nn.Conv2d(fc_channels, fc_channels, 1)
        self.relu7 = nn.ReLU(inplace=True)
        self.drop7 = nn.Dropout2d()
        self.score_fr = nn.Conv2d(fc_channels, num_classes, kernel_size=1)
        self.upscore2 = nn.ConvTranspose2d(num_classes, num_classes, kernel_size=4, stride=2, padding=1)
        self.upscore16 = nn.ConvTranspose2d(num_classes, num_classes, kernel_size=32, stride=16, padding=8)

    def forward(self, x):
        h = self.block(3, self.block(2, self.block(1, x)))
        pool4 = h = self.block(4, h)
        score_pool4c = self.score_pool4_fr(pool4)
        h = self.block(5, h)
        h = self.drop6(self.relu6(self.fc6(h)))
        h = self.drop7(self.relu7(self.fc7(h)))
        h = self.score_fr(h)
        upscore2 = self.upscore2(h)
        h = upscore2 + score_pool4c
        return self.upscore16(h)


class TorchFCN8s(_SeedBackbone):
    def __init__(self, num_classes, in_channels=3, widths=VGG["widths"], convs_per_block=VGG["convs_per_block"],
                 fc_channels=4096):
        super().__init__()
        self.num_classes, self.convs_per_block = num_classes, convs_per_block
        cin = self._backbone(in_channels, widths, convs_per_block, score_after=(3, 4))
        self.fc6 = nn.Conv2d(cin, fc_channels, 1)
        self.relu6 = nn.ReLU(inplace=True)
        self.drop6 = nn.Dropout2d()
        self.fc7 = nn.Conv2d(fc_channels, fc_channels, 1)
        self.relu7 = nn.ReLU(inplace=True)
        self.drop7 = nn.Dropout2d()
        self.score_fr = nn.Conv2d(fc_channels, num_classes, kernel_size=1)
        self.upscore2 = nn.ConvTranspose2d(num_classes, num_classes, kernel_size=4, stride=2, padding=1)
        self.upscore2_pool4 = nn.ConvTranspose2d(num_classes, num_classes, kernel_size=4, stride=2, padding=1)
        self.upscore8 = nn.ConvTranspose2d(num_classes, num_classes, kernel_size=16, stride=8, padding=4)

    def forward(self, x):
        h = self.block(2, self.block(1, x))
        pool3 = h = self.block(3, h)
        score_pool3c = self.score_pool3_fr(pool3)
        pool4 = h = self.block(4, h)
        score_pool4c = self.score_pool4_fr(pool4)
        h = self.block(5, h)
        h = self.drop6(self.relu6(self.fc6(h)))
        h = self.drop7(self.relu7(self.fc7(h)))
        h = self.score_fr(h)
        upscore2 = self.upscore2(h)
        h = upscore2 + score_pool4c
        upscore2_pool4c = self.upscore2_pool4(h)
        h = upscore2_pool4c + score_pool3c
        return self.upscore8(h)


CLASSES = {"FCN32s": TorchFCN32s, "FCN16s": TorchFCN16s, "FCN8s": TorchFCN8s}


def _is_cbr(torch_model, name: str) -> bool:
    return isinstance(getattr(torch_model, name, None), nn.Sequential)


def to_torch_state_dict(model, torch_model) -> dict:
    """Our ``state_dict()`` renamed for ``torch_model`` (``conv1_1.weight`` -> ``conv1_1.0.weight``)."""
    out = {}
    for key, value in model.state_dict().items():
        layer, param = key.rsplit(".", 1)
        name = f"{layer}.0.{param}" if _is_cbr(torch_model, layer) else key
        out[name] = torch.from_numpy(np.ascontiguousarray(value))
    return out


def strip(name: str) -> str:
    """Seed name -> ours: drop the ``.0`` of the ``nn.Sequential`` CBR blocks."""
    return re.sub(r"\.0\.", ".", name)


def from_torch_state_dict(state: dict) -> dict:
    """A seed-class ``state_dict`` renamed for ours, as NumPy arrays."""
    return {strip(key): value.detach().cpu().numpy() for key, value in state.items()}


def build_like(model):
    """The seed-class twin of one of our FCNs, same architecture, same weights, same dtype, eval mode."""
    cls = CLASSES[type(model).__name__]
    cfg = model.config()
    twin = cls(cfg["num_classes"], cfg["in_channels"], cfg["widths"], cfg["convs_per_block"], cfg["fc_channels"])
    twin = twin.to(torch.float64 if model.dtype == np.float64 else torch.float32)
    twin.load_state_dict(to_torch_state_dict(model, twin))
    return twin.eval()

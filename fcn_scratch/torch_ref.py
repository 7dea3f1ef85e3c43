"""The seed's PyTorch FCN-32s / FCN-16s / FCN-8s, with widths as parameters (needs the ``compare`` extra).

Written from the classes in the seed notes (``002_*.txt``): ``CBR`` blocks
(``nn.Sequential(Conv2d, ReLU)``) for the backbone, ceil-mode pooling, 1x1
``fc6``/``fc7`` (inside a CBR in FCN-32s, bare ``Conv2d`` + ReLU in 16s/8s),
zero-free default init (weights are loaded from ours), and the transposed
convolutions ``k64 s32 p16``, ``k4 s2 p1``, ``k32 s16 p8``, ``k16 s8 p4``.
Only for parity tests and benchmarks: the engine never imports it.

``to_torch_state_dict(model)`` / ``from_torch_state_dict(sd)`` translate names:
the seed's ``nn.Sequential`` adds a ``.0`` (``conv1_1.0.weight``) that ours omits.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _cbr(cin, cout, k=3, p=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, 1, p), nn.ReLU(inplace=True))


class _Backbone(nn.Module):
    skips: tuple = ()

    def __init__(self, num_classes, in_channels, widths, convs_per_block, fc_channels, fc_in_cbr):
        super().__init__()
        self.convs_per_block = convs_per_block
        cin = in_channels
        for b, (cout, n) in enumerate(zip(widths, convs_per_block), start=1):
            for i in range(1, n + 1):
                setattr(self, f"conv{b}_{i}", _cbr(cin, cout))
                cin = cout
            setattr(self, f"pool{b}", nn.MaxPool2d(2, stride=2, ceil_mode=True))
            if b in self.skips:
                setattr(self, f"score_pool{b}_fr", nn.Conv2d(cout, num_classes, 1))
        self.fc_in_cbr = fc_in_cbr
        if fc_in_cbr:  # the seed's FCN32s wraps fc6/fc7 in CBR
            self.fc6 = _cbr(cin, fc_channels, 1, 0)
            self.drop6 = nn.Dropout2d()
            self.fc7 = _cbr(fc_channels, fc_channels, 1, 0)
            self.drop7 = nn.Dropout2d()
        else:
            self.fc6 = nn.Conv2d(cin, fc_channels, 1)
            self.relu6 = nn.ReLU(inplace=True)
            self.drop6 = nn.Dropout2d()
            self.fc7 = nn.Conv2d(fc_channels, fc_channels, 1)
            self.relu7 = nn.ReLU(inplace=True)
            self.drop7 = nn.Dropout2d()
        self.score_fr = nn.Conv2d(fc_channels, num_classes, 1)

    def block(self, b, h):
        for i in range(1, self.convs_per_block[b - 1] + 1):
            h = getattr(self, f"conv{b}_{i}")(h)
        return getattr(self, f"pool{b}")(h)

    def head(self, h):
        if self.fc_in_cbr:
            return self.score_fr(self.drop7(self.fc7(self.drop6(self.fc6(h)))))
        h = self.drop6(self.relu6(self.fc6(h)))
        return self.score_fr(self.drop7(self.relu7(self.fc7(h))))


class FCN32s(_Backbone):
    def __init__(self, num_classes, in_channels=3, widths=(64, 128, 256, 512, 512),
                 convs_per_block=(2, 2, 3, 3, 3), fc_channels=4096):
        super().__init__(num_classes, in_channels, widths, convs_per_block, fc_channels, fc_in_cbr=True)
        self.upscore32 = nn.ConvTranspose2d(num_classes, num_classes, 64, stride=32, padding=16)

    def forward(self, x):
        h = x
        for b in range(1, 6):
            h = self.block(b, h)
        return self.upscore32(self.head(h))


class FCN16s(_Backbone):
    skips = (4,)

    def __init__(self, num_classes, in_channels=3, widths=(64, 128, 256, 512, 512),
                 convs_per_block=(2, 2, 3, 3, 3), fc_channels=4096):
        super().__init__(num_classes, in_channels, widths, convs_per_block, fc_channels, fc_in_cbr=False)
        self.upscore2 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1)
        self.upscore16 = nn.ConvTranspose2d(num_classes, num_classes, 32, stride=16, padding=8)

    def forward(self, x):
        h = x
        for b in range(1, 5):
            h = self.block(b, h)
        score_pool4c = self.score_pool4_fr(h)
        h = self.head(self.block(5, h))
        return self.upscore16(self.upscore2(h) + score_pool4c)


class FCN8s(_Backbone):
    skips = (3, 4)

    def __init__(self, num_classes, in_channels=3, widths=(64, 128, 256, 512, 512),
                 convs_per_block=(2, 2, 3, 3, 3), fc_channels=4096):
        super().__init__(num_classes, in_channels, widths, convs_per_block, fc_channels, fc_in_cbr=False)
        self.upscore2 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1)
        self.upscore2_pool4 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1)
        self.upscore8 = nn.ConvTranspose2d(num_classes, num_classes, 16, stride=8, padding=4)

    def forward(self, x):
        h = x
        for b in range(1, 4):
            h = self.block(b, h)
        score_pool3c = self.score_pool3_fr(h)
        h = self.block(4, h)
        score_pool4c = self.score_pool4_fr(h)
        h = self.head(self.block(5, h))
        h = self.upscore2(h) + score_pool4c
        h = self.upscore2_pool4(h) + score_pool3c
        return self.upscore8(h)


CLASSES = {"FCN32s": FCN32s, "FCN16s": FCN16s, "FCN8s": FCN8s}


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


def from_torch_state_dict(state: dict) -> dict:
    """A seed-class ``state_dict`` renamed for ours: drop the ``.0`` of ``nn.Sequential`` names."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[1] == "0":
            key = f"{parts[0]}.{parts[2]}"
        out[key] = value.detach().cpu().numpy()
    return out


def build_like(model):
    """The seed-class twin of one of our FCNs, same architecture, same weights, same dtype, eval mode."""
    cls = CLASSES[type(model).__name__]
    cfg = model.config()
    twin = cls(cfg["num_classes"], cfg["in_channels"], cfg["widths"], cfg["convs_per_block"], cfg["fc_channels"])
    twin = twin.to(torch.float64 if model.dtype == np.float64 else torch.float32)
    twin.load_state_dict(to_torch_state_dict(model, twin))
    return twin.eval()

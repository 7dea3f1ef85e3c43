# %% [markdown]
# # Lesson 12: receptive fields and architecture choices -- what a convolution sees, and the designs built on it
#
# The previous lessons built FCN layer by layer. This one steps back and asks
# what a stack of such layers *sees*, and how the architectures around FCN
# spend their parameters and their arithmetic. Every layer comes from
# `fcn_scratch`; where the engine lacks a layer (a grouped convolution,
# BatchNorm), the lesson builds the same computation from the engine's `Conv2d`
# and says so. This lesson
#
# 1. computes and **measures receptive fields** (VGG16's pools widen them to
#    6, 16, 44, 100, 212 px; the total stride is a product), and why VGG stacks
#    3x3 convolutions and pools,
# 2. expresses **depthwise convolution** with the engine's `Conv2d` and counts
#    what a depthwise-separable block saves,
# 3. runs **Conv1D** and **Conv3D** with the engine's 2-D convolution,
# 4. reads FCN as an **encoder-decoder**, and U-Net's concatenation as a
#    generalisation of FCN's sum,
# 5. does **super-resolution** (초해상도) with nearest, bilinear and a trained transposed conv,
# 6. traces torchvision's **FCNHead** (3x3 conv, BatchNorm, ReLU, Dropout(0.1), 1x1 conv)
#    and folds its BatchNorm into the conv,
# 7. sorts parameters from **hyper-parameters** and maps a list of FCN knobs to the engine.
#
# Primary sources: Long, Shelhamer & Darrell, *Fully Convolutional Networks
# for Semantic Segmentation*, arXiv:1411.4038 -- Section 3 (receptive fields,
# "path-connected" locations), 3.3 (upsampling is backwards strided
# convolution, learned), 4.2 (combining what and where: the skips), 4.3 (the
# experimental framework: optimiser, dropout, augmentation); Simonyan &
# Zisserman (VGG), arXiv:1409.1556, Section 2.3 (a stack of 3x3 convs: the
# field of a 7x7 with 27C^2 instead of 49C^2 weights); Yu & Koltun,
# arXiv:1511.07122, Section 2 (dilated convolutions); Luo et al.,
# arXiv:1701.04128 (the effective receptive field is concentrated at the
# centre); Howard et al. (MobileNets), arXiv:1704.04861, Section 3.1
# (depthwise-separable cost 1/N + 1/D_K^2); Ronneberger et al. (U-Net),
# arXiv:1505.04597, Section 2 (concatenating skips); Dong, Loy & Tang (FSRCNN),
# arXiv:1608.00367, Section 3 (a learned deconvolution does the upsampling);
# Dumoulin & Visin, arXiv:1603.07285, Section 4 (transposed = fractionally
# strided convolution); Ioffe & Szegedy (BatchNorm), arXiv:1502.03167,
# Section 3.1 (at inference a per-channel affine map); Tompson et al.,
# arXiv:1411.4280 (SpatialDropout, which drops whole channels).
# Run: `python lessons/12_receptive_fields_and_architectures.py [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson  # first: puts the repo on sys.path, picks a headless backend

import matplotlib.pyplot as plt
import numba
import numpy as np
from matplotlib.patches import Rectangle
from scipy import ndimage, signal

from fcn_scratch import kernels
from fcn_scratch.data import denormalize, toy_shapes
from fcn_scratch.functional import conv2d_forward
from fcn_scratch.init import bilinear_weight
from fcn_scratch.layers import Conv2d, ConvTranspose2d, Dropout2d, ReLU
from fcn_scratch.models import TINY, UPSAMPLERS, VGG16_CONVS, VGG16_WIDTHS, FCN8s, FCN16s, FCN32s, pooled_sizes
from fcn_scratch.optim import Adam
from fcn_scratch.train import fit
from fcn_scratch.upsample import BilinearUpsample, NearestUpsample

lesson = Lesson("12_receptive_fields_and_architectures",
                "Receptive fields and architecture choices: what a convolution sees, and the designs built on it")
if numba.config.DISABLE_JIT and kernels.get_backend() == "numba":
    # NUMBA_DISABLE_JIT=1 turns the Numba kernels into plain Python loops: minutes for step 6's big layer.
    kernels.set_backend("numpy")
    print("NUMBA_DISABLE_JIT=1: running on the NumPy twins of the kernels instead (same numbers, lesson 10)")
rng = np.random.default_rng(12)
f64 = dict(dtype=np.float64)


def bare(ax):
    ax.set_xticks([]), ax.set_yticks([])


# %%
lesson.step("Receptive field: VGG16's pools widen it to 6, 16, 44, 100, 212 px; stacked 3x3 convs are cheap")
# The receptive field of a unit is the input region it is path-connected to (FCN paper, Section 3). Each layer
# widens it by (k-1) d times the current jump (the input pixels between neighbouring units), then multiplies the
# jump by its stride.


def receptive_field(layers):
    """(size, jump) after layers [(kernel, stride, dilation), ...]: r += (k-1) d j, then j *= s."""
    r, jump = 1, 1
    for k_, s_, d_ in layers:
        r, jump = r + (k_ - 1) * d_ * jump, jump * s_
    return r, jump


vgg_layers, stage_end, rf = [], [], []
for n in VGG16_CONVS:
    vgg_layers += [(3, 1, 1)] * n + [(2, 2, 1)]  # n 3x3 convs (padding 1), then the 2x2 stride-2 pool
    stage_end.append(len(vgg_layers))
    rf.append(receptive_field(vgg_layers))
print("after pool1..pool5: receptive field", [r for r, _ in rf], "px, jump (pixels per step)", [j for _, j in rf])
lesson.check([r for r, _ in rf] == [6, 16, 44, 100, 212], "the formula: one pool5 cell sees 212x212 pixels "
                                                          "(VGG16's commonly cited field); shallow layers are local, "
                                                          "deep ones nearly global")
# Measured with the engine: one channel, every weight positive (no cancellation), so the gradient of one output
# pixel is nonzero exactly on its receptive field. Pools become 2x2 stride-2 averaging convs: the same window,
# and unlike max-pooling their backward reaches every pixel of it.
chain = []
for n in VGG16_CONVS:
    chain += [Conv2d(1, 1, 3, padding=1, bias=False, **f64) for _ in range(n)]
    chain.append(Conv2d(1, 1, 2, stride=2, bias=False, **f64))
for layer in chain:
    layer.params["weight"][...] = 1.0 / layer.weight.size
h_ = np.ones((1, 1, 224, 224))
sizes_in, sizes_out = [], []  # the map size each layer of the chain receives and returns
for layer in chain:
    sizes_in.append(h_.shape[-1])
    h_ = layer.forward(h_)
    sizes_out.append(h_.shape[-1])
measured, grads_by_stage = [], []
for end in stage_end:
    n_ = sizes_out[end - 1]
    d_ = np.zeros((1, 1, n_, n_))
    d_[0, 0, n_ // 2, n_ // 2] = 1.0  # the centre cell of this stage
    for layer in reversed(chain[:end]):
        d_ = layer.backward(d_)
    rows_ = np.nonzero(d_[0, 0].any(axis=1))[0]
    measured.append(int(rows_.max() - rows_.min() + 1))
    grads_by_stage.append(d_[0, 0])
print("measured from the engine's backward pass:", measured)
lesson.check(measured == [r for r, _ in rf], "the gradient of one cell reaches exactly its receptive field")
# The jump, measured the same way: the pool5 cell one to the right of the centre one.
n5 = sizes_out[-1]
d_ = np.zeros((1, 1, n5, n5))
d_[0, 0, n5 // 2, n5 // 2 + 1] = 1.0
for layer in reversed(chain):
    d_ = layer.backward(d_)
shift = int(np.nonzero(d_[0, 0].any(axis=0))[0].min() - np.nonzero(grads_by_stage[-1].any(axis=0))[0].min())
strides = [s_ for _, s_, _ in vgg_layers if s_ > 1]
print(f"two neighbouring pool5 cells: their fields start {shift} px apart; the five pool strides {strides} "
      f"multiply to {int(np.prod(strides))} and add up to {sum(strides)}")
lesson.check(shift == int(np.prod(strides)) != sum(strides),
             f"neighbouring pool5 cells look {shift} px apart (measured): the total stride is the PRODUCT of the "
             f"strides, 2^5 = 32, not their sum (10)")
g5 = grads_by_stage[-1]
lesson.check(g5.max() > 1e6 * g5[g5 > 0].min(), "but not evenly: with these averaging weights the centre pixel "
                                                 "counts over a million times more than the field's corners "
                                                 "(the 'effective' receptive field, Luo et al.)")


def support(layers, n=40):
    """Width of the input region the centre output of a chain of Conv2d(1, 1, ...) layers depends on."""
    for layer in layers:
        layer.params["weight"][...] = 1.0
    x_ = np.ones((1, 1, n, n))
    for layer in layers:
        x_ = layer.forward(x_)
    d_ = np.zeros_like(x_)
    d_[0, 0, x_.shape[2] // 2, x_.shape[3] // 2] = 1.0
    for layer in reversed(layers):
        d_ = layer.backward(d_)
    return int(np.ptp(np.nonzero(d_[0, 0].any(axis=1))[0]) + 1)


print("receptive field and weights (64 -> 64 channels) of:")
cases = {"one 5x5 conv": [(5, 1)], "two 3x3 convs": [(3, 1)] * 2, "one 7x7 conv": [(7, 1)],
         "three 3x3 convs": [(3, 1)] * 3, "one 3x3 conv, dilation 2": [(3, 2)],
         "13 3x3 convs, no pooling": [(3, 1)] * 13}  # (kernel, dilation) of each conv
found, weights = {}, {}
for name, spec in cases.items():
    found[name] = support([Conv2d(1, 1, k_, dilation=d_, **f64) for k_, d_ in spec])
    weights[name] = sum(Conv2d(64, 64, k_, dilation=d_, bias=False).weight.size for k_, d_ in spec)
    print(f"    {name:26s} {found[name]:3d} px   {weights[name]:>9,} weights")
lesson.check(found["two 3x3 convs"] == found["one 5x5 conv"] == 5 and found["three 3x3 convs"] == found["one 7x7 conv"]
             == 7 and weights["two 3x3 convs"] / weights["one 5x5 conv"] == 18 / 25 and
             weights["three 3x3 convs"] / weights["one 7x7 conv"] == 27 / 49,
             "two 3x3 convs see 5x5 with 18C^2 weights instead of 25C^2, three see 7x7 with 27C^2 instead of 49C^2 "
             "(VGG, Section 2.3: why it stacks 3x3 convs deep)")
lesson.check(found["one 3x3 conv, dilation 2"] == 5 and weights["one 3x3 conv, dilation 2"] == 9 * 64 * 64,
             "dilation widens the field without extra weights (atrous, lesson 03)")
macs = lambda sizes: sum(9 * cin * cout * s * s for cin, cout, s in sizes)  # noqa: E731
# The map size each of VGG16's 13 convs works on, as the chain above measured it (the 3x3 layers of the chain).
conv_sizes = [s_ for layer, s_ in zip(chain, sizes_in) if layer.weight.shape[-1] == 3]
convs, cin = [], 3
for width in np.repeat(VGG16_WIDTHS, VGG16_CONVS):
    convs.append((cin, int(width), conv_sizes[len(convs)]))
    cin = int(width)
pooled_macs, flat_macs = macs(convs), macs([(ci, co, 224) for ci, co, _ in convs])
print(f"VGG16's 13 convs on a 224 image: maps {sorted(set(conv_sizes), reverse=True)} px, "
      f"{pooled_macs / 1e9:.1f} G multiply-adds with pooling, {flat_macs / 1e9:.0f} G without (every layer at 224x224)")
lesson.check(found["13 3x3 convs, no pooling"] == 27 and flat_macs > 40 * pooled_macs,
             "without pooling the 13 convs see only 27x27 px (context lost) and cost over 40x more")
fc6_pooled = 512 * int(np.prod(pooled_sizes(224, 224)[-1])) * 4096  # dense fc6 on pool5's 7x7x512
print(f"A dense fc6 on pool5's 7x7x512 map has {fc6_pooled / 1e6:.1f} M weights; on an unpooled 224x224x512 map it "
      f"would need {512 * 224 * 224 * 4096 / 1e9:.0f} G ({224 * 224 // 49}x): pooling keeps the classifier's "
      f"parameters in check (a conv's weights do not depend on the map size).")

fig, axes = plt.subplots(1, 2, figsize=(11, 5))
ax = axes[0]
ax.imshow(np.zeros((224, 224)), cmap="Greys", vmin=0, vmax=1)
ax.set_xlabel("image column"), ax.set_ylabel("image row")
for b_, (g_, r_) in enumerate(zip(grads_by_stage, measured)):
    rows_, cols_ = np.nonzero(g_.any(axis=1))[0], np.nonzero(g_.any(axis=0))[0]
    ax.add_patch(Rectangle((cols_.min() - 0.5, rows_.min() - 0.5), r_, r_, fill=False, lw=2,
                           ec=plt.cm.viridis(b_ / 4.5), label=f"pool{b_ + 1}: {r_}x{r_}"))
ax.set_title("Receptive field of the centre cell after each pool\n(measured with the engine, 224x224 image)",
             fontsize=9)
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
ax.set_xlim(-0.5, 223.5), ax.set_ylim(223.5, -0.5)
ax = axes[1]
im = ax.imshow(np.log10(np.where(grads_by_stage[-1] > 0, grads_by_stage[-1], np.nan)), cmap="magma")
fig.colorbar(im, ax=ax, shrink=0.8, label="log10 of the gradient")
ax.set_title("pool5 cell's gradient on the image (these averaging weights):\nthe centre counts far more than the "
             "edges", fontsize=9)
ax.set_xlabel("image column"), ax.set_ylabel("image row")
fig.tight_layout()
lesson.save(fig, "receptive_field")

# %%
lesson.step("Depthwise convolution (tf.nn.depthwise_conv2d): every filter applied to each input channel separately")
Cin, mult = 3, 2  # 3 input channels, 2 filters per channel ("channel multiplier")
xd = rng.standard_normal((2, Cin, 12, 12))
per_channel = [Conv2d(1, mult, 3, **f64, seed=20 + c) for c in range(Cin)]  # channel c has its own 2 filters
y_loop = np.concatenate([per_channel[c].forward(xd[:, c : c + 1]) for c in range(Cin)], axis=1)
# The same as ONE Conv2d whose weight is block-diagonal: output map c*mult + j reads input channel c only.
block = Conv2d(Cin, Cin * mult, 3, **f64, seed=0)
block.params["weight"][...] = 0
for c in range(Cin):
    block.params["weight"][c * mult : (c + 1) * mult, c] = per_channel[c].weight[:, 0]
block.params["bias"][...] = np.concatenate([pc.bias for pc in per_channel])
y_block = block.forward(xd)
print(f"input {xd.shape}, {mult} filters per channel -> {y_block.shape}; block-diagonal weight {block.weight.shape}, "
      f"{100 * (block.weight == 0).mean():.0f}% zeros")
# Change input channel 0 only: a depthwise conv must change output maps 0 and 1 (its two filters) and no other.
nudged = xd.copy()
nudged[:, 0] += rng.standard_normal(nudged[:, 0].shape)
changed_maps = np.nonzero(np.abs(block.forward(nudged) - y_block).max(axis=(0, 2, 3)) > 0)[0].tolist()
print(f"input channel 0 changed -> output maps {changed_maps} changed "
      f"({mult} filters x {Cin} channels = {Cin * mult} maps in all)")
lesson.check(changed_maps == list(range(mult)), f"each input channel feeds only its own {mult} output maps: "
                                                "f_n filters on each of f_n' channels give f_n * f_n' maps")
lesson.close(y_block, y_loop, "Conv2d(1, 2, 3) on each channel separately = one Conv2d(3, 6, 3) with a "
                              "block-diagonal weight")
c, j_ = 1, 1  # an independent check of one map: output c*mult + j is input channel c correlated with its filter
lesson.close(y_block[0, c * mult + j_], signal.correlate2d(xd[0, c], per_channel[c].weight[j_, 0], mode="valid")
             + per_channel[c].bias[j_], "output map 3 = channel 1 correlated with its 2nd filter (scipy), nothing else")
# What it saves, as a depthwise-separable block: depthwise 3x3 (one filter per channel) + pointwise 1x1 conv.
Cs = 256
full = Conv2d(Cs, Cs, 3, bias=False)
depthwise = [Conv2d(1, 1, 3, bias=False) for _ in range(Cs)]
pointwise = Conv2d(Cs, Cs, 1, bias=False)
n_full, n_sep = full.weight.size, sum(d.weight.size for d in depthwise) + pointwise.weight.size
print(f"{Cs} -> {Cs} channels, 3x3: full conv {n_full:,} weights; depthwise {Cs * 9:,} + pointwise 1x1 "
      f"{pointwise.weight.size:,} = {n_sep:,} ({n_full / n_sep:.1f}x fewer)")
lesson.close(n_sep / n_full, 1 / Cs + 1 / 9, "depthwise + 1x1 over a full conv = 1/C_out + 1/k^2 (MobileNets, "
                                             "Section 3.1); each weight is one multiply-add per output pixel, so the "
                                             "FLOPs shrink the same")
print("This engine's Conv2d has no `groups` argument: the block-diagonal weight above multiplies its zeros too, "
      "so it shows\nthe arithmetic of a depthwise conv, not its speed.")

# %%
lesson.step("Conv1D and Conv3D (keras.layers): the same sliding dot product in one and in three dimensions")
seq = rng.standard_normal((2, 3, 50))  # (N, C, L): a 3-channel time series or a sequence of word vectors
w1 = rng.standard_normal((4, 3, 5))  # 4 filters, 3 channels, width 5
y1 = conv2d_forward(seq[:, :, None, :], w1[:, :, None, :])[0][:, :, 0, :]  # a 1 x L image, a 1 x 5 kernel
ref1 = np.array([[sum(np.correlate(seq[n, c], w1[o, c], mode="valid") for c in range(3)) for o in range(4)]
                 for n in range(2)])
print(f"Conv1D: {seq.shape} * {w1.shape} -> {y1.shape} (the engine's conv2d on height 1)")
lesson.close(y1, ref1, "Conv1D = the engine's 2-D convolution with height 1 (checked against np.correlate)")
vol = rng.standard_normal((1, 2, 6, 9, 9))  # (N, C, D, H, W): a 2-channel volume, e.g. a PET scan
w3 = rng.standard_normal((3, 2, 3, 3, 3))  # 3 filters, 3x3x3
# A 3-D conv is a sum of 2-D convs: output slice d adds kernel slice kd applied to input slice d + kd.
y3 = np.stack([sum(conv2d_forward(vol[:, :, d + kd], w3[:, :, kd])[0] for kd in range(3)) for d in range(6 - 2)],
              axis=2)
ref3 = np.array([[sum(signal.correlate(vol[0, c], w3[o, c], mode="valid") for c in range(2)) for o in range(3)]])
print(f"Conv3D: {vol.shape} * {w3.shape} -> {y3.shape} (three 2-D convs per output slice, summed)")
lesson.close(y3, ref3, "Conv3D = for each output slice, the sum over kernel depth of 2-D convs "
                       "(scipy.signal.correlate)")

# %%
lesson.step("FCN is an encoder-decoder network (인코더-디코더); U-Net concatenates where FCN adds")
model8 = FCN8s.tiny(5, **f64, seed=0)
sd = model8.state_dict()
encoder = [k for k in sd if k.startswith(("conv", "fc6", "fc7"))]  # the downsampling network (the classifier)
decoder = [k for k in sd if k not in encoder]  # score layers and upsamplers
n_enc, n_dec = sum(sd[k].size for k in encoder), sum(sd[k].size for k in decoder)
x64 = rng.standard_normal((1, 3, 64, 64))
h_ = x64
for b_ in range(1, 6):
    h_ = model8._block_forward(b_, h_)
print(f"encoder: image {x64.shape} -> pool5 {h_.shape} (an abstract representation, 1/32 of the size), "
      f"{n_enc:,} parameters")
print(f"decoder: score maps at 1/32, 1/16, 1/8 -> upsampled to {model8.forward(x64).shape}, {n_dec:,} parameters "
      f"({', '.join(sorted({k.split('.')[0] for k in decoder}))})")
lesson.check(n_dec < 0.02 * n_enc, f"FCN's decoder is light: {100 * n_dec / n_enc:.1f}% of the encoder's parameters")


def n_params(variant, K, widths, convs, fc):
    """Parameter count of FCN-`variant` from its layer shapes (each weight plus its bias)."""
    n, cin = 0, 3
    for w_, c_ in zip(widths, convs):
        for _ in range(c_):
            n, cin = n + 9 * cin * w_ + w_, w_
    n += (cin * fc + fc) + (fc * fc + fc) + (fc * K + K)  # fc6, fc7, score_fr (1x1 convs)
    n += {"32s": 0, "16s": widths[3] * K + K, "8s": widths[3] * K + K + widths[2] * K + K}[variant]  # skips
    return n + sum(K * K * k_ * k_ + K for _, k_, _, _ in UPSAMPLERS[variant])  # upsamplers


counts = {v: sum(p.size for _, p, _ in cls.tiny(5, seed=0).named_parameters())
          for v, cls in (("32s", FCN32s), ("16s", FCN16s), ("8s", FCN8s))}
lesson.check(all(counts[v] == n_params(v, 5, TINY["widths"], TINY["convs_per_block"], TINY["fc_channels"])
                 for v in counts), "the count from the layer shapes matches the engine's three tiny models")
vgg = {v: n_params(v, 21, VGG16_WIDTHS, VGG16_CONVS, 4096) for v in ("32s", "16s", "8s")}
print("VGG16 widths, 21 classes (PASCAL VOC):", {f"FCN-{v}": f"{n:,}" for v, n in vgg.items()})
# The engine's own FCN-32s and FCN-8s at VGG16's widths and 21 classes. The variants share the encoder, so one
# conv per block and fc_channels 64 (a 16 MB model, not VGG16's 0.5 GB) change their difference in nothing.
slim = dict(widths=VGG16_WIDTHS, convs_per_block=(1, 1, 1, 1, 1), fc_channels=64, seed=0)
engine_counts = {v: sum(p.size for _, p, _ in cls(21, **slim).named_parameters())
                 for v, cls in (("32s", FCN32s), ("8s", FCN8s))}
extra = engine_counts["8s"] - engine_counts["32s"]
print(f"the engine's FCN-8s minus FCN-32s at VGG16 widths: {extra:+,} parameters "
      f"({100 * extra / vgg['32s']:+.2f}% of the full VGG16 FCN-32s)")
lesson.check(extra == vgg["8s"] - vgg["32s"] < 0,
             "the skips cost no real parameters: FCN-8s even has fewer than FCN-32s (the engine's models say so, "
             "as the shape count does), because FCN-32s's single x32 upsampler (21x21x64x64) outweighs two 1x1 "
             "score layers and three small upsamplers")
# U-Net: the decoder concatenates the skip's features with the upsampled ones, then convolves. With a 1x1
# conv after the concatenation this is exactly FCN's 'score each, then add':
deep, skip = rng.standard_normal((1, 6, 5, 7)), rng.standard_normal((1, 4, 5, 7))
fuse = Conv2d(10, 3, 1, **f64, seed=9)  # on the concatenation [deep, skip]
score_deep, score_skip = Conv2d(6, 3, 1, **f64), Conv2d(4, 3, 1, bias=False, **f64)
score_deep.params["weight"][...], score_deep.params["bias"][...] = fuse.weight[:, :6], fuse.bias
score_skip.params["weight"][...] = fuse.weight[:, 6:]
lesson.close(fuse.forward(np.concatenate([deep, skip], axis=1)), score_deep.forward(deep) + score_skip.forward(skip),
             "1x1 conv of the concatenation = sum of 1x1 convs of the parts: FCN's sum is U-Net's concatenation "
             "with a 1x1 fusion")
print("U-Net then runs 3x3 convs on the concatenation, which a sum of per-branch scores cannot express. "
      "Why an encoder-\ndecoder at all: a network kept at full size ('same' padding, no pooling) costs far more -- "
      f"step 1: {flat_macs / pooled_macs:.0f}x for VGG16's convs.")

# %%
lesson.step("Super-resolution (초해상도): an image upsampled x2 -- nearest, bilinear, a trained transposed conv")
# High-resolution toy images (grey, without the pixel noise no upsampler could restore), their x2-smaller
# versions (2x2 averages); upsample those back and compare with the originals.
hr = denormalize(toy_shapes(40, 32, seed=21, noise=0.0)[0]).mean(axis=1, keepdims=True).astype(np.float64)
lr_img = hr.reshape(40, 1, 16, 2, 16, 2).mean(axis=(3, 5))
train_hr, test_hr, train_lr, test_lr = hr[:32], hr[32:], lr_img[:32], lr_img[32:]


def upscale(module, small):
    """x2 with the edge pixel repeated once around (so the borders are not darkened), then cut back."""
    return module.forward(np.pad(small, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge"))[:, :, 2:-2, 2:-2]


def mse(a, b):
    return float(((a - b) ** 2).mean())


learned = ConvTranspose2d(1, 1, 4, stride=2, padding=1, **f64, seed=0)  # FCN's x2 upsampler: k4 s2 p1
learned.params["weight"][...] = bilinear_weight(1, 1, 4, np.float64)  # starts as bilinear (lesson 06)
learned.params["bias"][...] = 0
methods = {"nearest": NearestUpsample(2), "bilinear": BilinearUpsample(1, 2)}
before = {name: mse(upscale(m, test_lr), test_hr) for name, m in methods.items()}
lesson.close(upscale(learned, test_lr), upscale(methods["bilinear"], test_lr), "the transposed conv starts as the "
                                                                               "bilinear upsampler")
opt = Adam(learned, lr=3e-3)
train_curve = []
for it in range(200):  # full-batch gradient descent on the mean squared error
    full = learned.forward(np.pad(train_lr, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge"))
    err = full[:, :, 2:-2, 2:-2] - train_hr
    train_curve.append(float((err**2).mean()))
    grad = np.zeros_like(full)
    grad[:, :, 2:-2, 2:-2] = 2 * err / err.size
    learned.backward(grad)
    opt.step()
after = {"learned": mse(upscale(learned, test_lr), test_hr)}
# The transposed conv is also a 'fractionally strided' conv (부분 stride; Dumoulin & Visin, Section 4): stride 1/2
# = a stride-1 conv on the input with a zero between its pixels (lesson 05); the engine computes it both ways.
as_zero_insert = ConvTranspose2d(1, 1, 4, stride=2, padding=1, method="zero_insert", **f64)
as_zero_insert.load_state_dict(learned.state_dict())
lesson.close(upscale(as_zero_insert, test_lr), upscale(learned, test_lr),
             "the trained upsampler as zero insertion + stride-1 conv ('stride 1/2') = as col2im")
results_sr = {**before, **after}
print("test MSE (8 images never trained on):", {k: f"{v:.6f} ({10 * np.log10(1 / v):.2f} dB PSNR)"
                                                for k, v in results_sr.items()})
print(f"training MSE of the transposed conv: {train_curve[0]:.5f} (bilinear start) -> {train_curve[-1]:.5f}; "
      f"learned 4x4 kernel:\n{learned.weight[0, 0]}")
lesson.check(before["bilinear"] < before["nearest"], "bilinear beats nearest: it does not paint 2x2 blocks")
lesson.check(train_curve[-1] < train_curve[0] and after["learned"] < before["bilinear"],
             "trained on 32 images, the transposed conv beats bilinear on 8 others: its weights are learned "
             "by backpropagation (FCN paper, Section 3.3: the upsampling filter need not be fixed)")

fig, axes = plt.subplots(1, 5, figsize=(13, 3))
pics = [("low resolution 16x16", test_lr[0, 0]), *[(f"{n}: {10 * np.log10(1 / results_sr[n]):.2f} dB",
                                                   upscale(m, test_lr[:1])[0, 0])
                                                for n, m in (*methods.items(), ("learned", learned))],
        ("high resolution 32x32", test_hr[0, 0])]
for ax, (title, pic) in zip(axes, pics):
    ax.imshow(pic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    bare(ax)
fig.suptitle("x2 super-resolution of a test image (PSNR = 10 log10(1 / MSE) over the 8 test images; higher is "
             "better)", fontsize=10, y=1.02)
lesson.save(fig, "super_resolution")

# %%
lesson.step("torchvision's FCNHead: 3x3 conv, BatchNorm, ReLU, Dropout(0.1), 1x1 conv, traced")
# torchvision's FCN(backbone, classifier, aux_classifier): fcn_resnet50 puts classifier = FCNHead(2048, 21) on
# ResNet-50's last stage, run at 1/8 of the image size (dilated), and resizes the 21 score maps to the image with
# bilinear interpolation; the optional aux_classifier, FCNHead(1024, 21) on the stage before, adds a second loss
# during training only (torchvision's docstring: "auxiliary classifier used during training").
in_ch, n_cls = 2048, 21
inter = in_ch // 4
feat = rng.standard_normal((1, in_ch, 8, 8)).astype(np.float32)  # a 64x64 image at stride 8
conv_a = Conv2d(in_ch, inter, 3, padding=1, bias=False, seed=1)
gamma, beta = rng.uniform(0.5, 1.5, inter), rng.normal(0, 0.1, inter)
run_mean, run_var, bn_eps = rng.normal(0, 0.1, inter), rng.uniform(0.5, 2.0, inter), 1e-5


def batchnorm_eval(h):
    """BatchNorm2d at inference: per channel (h - running mean) / sqrt(running var + eps) * gamma + beta."""
    c_ = lambda v: v[None, :, None, None]  # noqa: E731
    return ((h - c_(run_mean)) / np.sqrt(c_(run_var) + bn_eps) * c_(gamma) + c_(beta)).astype(h.dtype)


relu_h, drop_h = ReLU(), Dropout2d(0.1, seed=3)
conv_b = Conv2d(inter, n_cls, 1, seed=2)
stages = [("features (ResNet-50 layer4)", feat)]
stages.append((f"Conv2d({in_ch}, {inter}, 3, padding=1, bias=False)", conv_a.forward(stages[-1][1])))
stages.append(("BatchNorm2d (eval: per-channel affine)", batchnorm_eval(stages[-1][1])))
stages.append(("ReLU", relu_h.forward(stages[-1][1])))
drop_h.eval()
stages.append(("Dropout (eval: identity)", drop_h.forward(stages[-1][1])))
stages.append((f"Conv2d({inter}, {n_cls}, 1)", conv_b.forward(stages[-1][1])))
stages.append(("bilinear x8 to the image", BilinearUpsample(n_cls, 8).forward(stages[-1][1])))
head_bn = (gamma, beta, run_mean, run_var)  # kept for the torch comparison at the end of the step
for name, a in stages:
    print(f"    {name:42s} {a.shape}")
lesson.check(stages[-1][1].shape == (1, n_cls, 64, 64),
             "in_channels -> in_channels // 4 (3x3) -> classes (1x1) -> upsampled x8 back to the 64x64 image")
n_conv = {name: sum(v.size for v in m.state_dict().values()) for name, m in (("3x3", conv_a), ("1x1", conv_b))}
print(f"parameters: {n_conv['3x3']:,} (3x3 conv) + {gamma.size + beta.size:,} (BatchNorm gamma, beta) + "
      f"{n_conv['1x1']:,} (1x1 conv) = {n_conv['3x3'] + gamma.size + beta.size + n_conv['1x1']:,}, nearly all in "
      f"the 3x3 conv")
lesson.check(np.array_equal(stages[4][1], stages[3][1]), "at inference dropout is the identity")
drop_h.train()
dropped = drop_h.forward(stages[3][1])
per_channel_kept = [(np.allclose(dropped[0, c_], 0) or np.allclose(dropped[0, c_], stages[3][1][0, c_] / 0.9))
                    for c_ in range(inter)]
lesson.check(all(per_channel_kept), "the engine has Dropout2d, which drops whole channels (torchvision's FCNHead uses "
                                    "nn.Dropout, single values); both rescale the kept ones by 1/(1-p)")
# The engine has no BatchNorm layer. At inference it is a per-channel affine map, so it folds into the conv
# before it -- which is why that conv has bias=False: BatchNorm's beta is the bias.
small_conv = Conv2d(64, 16, 3, padding=1, bias=False, **f64, seed=4)
gamma, beta = rng.uniform(0.5, 1.5, 16), rng.normal(0, 0.1, 16)
run_mean, run_var = rng.normal(0, 0.1, 16), rng.uniform(0.5, 2.0, 16)
scale = gamma / np.sqrt(run_var + bn_eps)
folded = Conv2d(64, 16, 3, padding=1, **f64)
folded.params["weight"][...] = small_conv.weight * scale[:, None, None, None]
folded.params["bias"][...] = beta - scale * run_mean
xs = rng.standard_normal((2, 64, 6, 6))
lesson.close(folded.forward(xs), batchnorm_eval(small_conv.forward(xs)),
             "eval-mode BatchNorm after a bias-free conv = one conv with weight * gamma/sigma and bias "
             "beta - gamma*mean/sigma")
# torchvision resizes with interpolate(mode="bilinear", align_corners=False); scipy's zoom(order=1,
# grid_mode=True, mode="nearest") computes the same. The engine's BilinearUpsample is FCN's bilinear
# transposed conv: equal inside, different in the outer s/2 rows and columns (zeros beyond the edge).
score = stages[-2][1].astype(np.float64)
ours = BilinearUpsample(n_cls, 8).forward(score)[0]
theirs = np.stack([ndimage.zoom(score[0, c_], 8, order=1, grid_mode=True, mode="nearest") for c_ in range(n_cls)])
lesson.close(ours[:, 4:-4, 4:-4], theirs[:, 4:-4, 4:-4], "BilinearUpsample = align_corners=False interpolation "
                                                         "away from the 4-pixel border", rtol=1e-9, atol=1e-9)
lesson.check(not np.allclose(ours[:, :4], theirs[:, :4]), "and differs on the border, where the transposed conv "
                                                          "sees zero padding")
try:
    import torch
except ImportError:
    torch = None
    print("    (torch not installed: the head and the scipy stand-in are not compared with torch)")
if torch is not None:
    tt = torch.nn.functional.interpolate(torch.from_numpy(score), scale_factor=8, mode="bilinear",
                                         align_corners=False)[0].numpy()
    lesson.close(theirs, tt, "torch is installed: its interpolate agrees with scipy's zoom", rtol=1e-9, atol=1e-9)
    # FCNHead as torchvision builds it, with the engine's weights and these BatchNorm statistics, in eval mode.
    head = torch.nn.Sequential(torch.nn.Conv2d(in_ch, inter, 3, padding=1, bias=False), torch.nn.BatchNorm2d(inter),
                               torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Conv2d(inter, n_cls, 1)).eval()
    with torch.no_grad():
        head[0].weight.copy_(torch.from_numpy(conv_a.weight))
        for name, v in (("weight", head_bn[0]), ("bias", head_bn[1]), ("running_mean", head_bn[2]),
                        ("running_var", head_bn[3])):
            getattr(head[1], name).copy_(torch.from_numpy(v.astype(np.float32)))
        head[4].weight.copy_(torch.from_numpy(conv_b.weight)), head[4].bias.copy_(torch.from_numpy(conv_b.bias))
        torch_scores = head(torch.from_numpy(feat)).numpy()
    print(f"    torch's head: {sum(p.numel() for p in head.parameters()):,} parameters")
    lesson.close(stages[-2][1], torch_scores, "torch's FCNHead (eval) computes the traced scores (float32)",
                 rtol=1e-4, atol=1e-4 * float(np.abs(torch_scores).max()))

# %%
lesson.step("Hyper-parameters (하이퍼 파라미터): what you set; parameters: what training sets")
model = FCN8s(5, widths=(8, 16, 32, 32, 32), convs_per_block=(1, 1, 1, 1, 1), fc_channels=32, **f64, seed=0)
config, params_before = model.config(), model.state_dict()
imgs, msks = toy_shapes(8, 32, seed=3)
fit(model, imgs, msks, epochs=2, batch_size=4, lr=1e-2, seed=0, progress=False)
params_after = model.state_dict()
changed = [k for k in params_before if not np.array_equal(params_before[k], params_after[k])]
print(f"hyper-parameters (model.config()): {config}")
print(f"fit(..., epochs=2, batch_size=4, lr=0.01, ...) changed {len(changed)} of {len(params_before)} parameter "
      f"tensors (state_dict()), e.g. {changed[:3]}")
lesson.check(model.config() == config and "score_fr.weight" in changed,
             "training changed the parameters (the zero score layers are no longer zero) and no hyper-parameter")
k7 = FCN8s(7, widths=(8, 16, 32, 32, 32), convs_per_block=(1, 1, 1, 1, 1), fc_channels=32, **f64, seed=0).state_dict()
diff_shape = sorted({k.split(".")[0] for k in k7 if k7[k].shape != params_before[k].shape})
print("number of classes 5 -> 7 changes the shapes of:", diff_shape)
lesson.check(k7.keys() == params_before.keys() and set(diff_shape) == {"score_fr", "score_pool4_fr", "score_pool3_fr",
                                                                       "upscore2", "upscore2_pool4", "upscore8"},
             "the number of classes touches only the score layers and upsamplers: the encoder can be reused")
out_a, out_b = model.forward(imgs[:1].astype(np.float64)), model.forward(np.zeros((1, 3, 40, 56)))
lesson.check(out_a.shape == (1, 5, 32, 32) and out_b.shape == (1, 5, 40, 56),
             "the input size is free: the same parameters serve 32x32 and 40x56 images")
keys32 = set(FCN32s(5, widths=(8, 16, 32, 32, 32), convs_per_block=(1, 1, 1, 1, 1), fc_channels=32).state_dict())
lesson.check(set(params_before) - keys32 == {f"{n}.{p}" for n in ("score_pool4_fr", "score_pool3_fr", "upscore2",
                                                                   "upscore2_pool4", "upscore8") for p in ("weight",
                                                                                                          "bias")},
             "the skip architecture (32s / 16s / 8s) adds the score_pool* layers and swaps the upsamplers")
table = [
    ("encoder & decoder: how complex", "widths, convs_per_block, fc_channels of FCN32s/16s/8s", "08, 12"),
    ("up-sampling method", "ConvTranspose2d (learned, bilinear init); BilinearUpsample, NearestUpsample, "
                           "BedOfNails, MaxUnpool2d", "05, 06"),
    ("which CNN backbone (+ its parameters)", "VGG16-style only (VGG16_WIDTHS, VGG16_CONVS, or the 'tiny' preset); "
                                              "no AlexNet/GoogLeNet/ResNet, no pretrained weights", "08"),
    ("skip architecture", "FCN32s, FCN16s, FCN8s; transfer_weights / fit_staged", "08, 09"),
    ("data augmentation", "not in the engine: fit() takes arrays -- flip or crop image and mask together first "
                          "(the FCN paper, Section 4.3, saw no gain from mirroring and jittering)", "-"),
    ("number of classes", "num_classes", "12"),
    ("input image size", "any H, W >= 1 (toy_shapes(size=...))", "04, 08"),
    ("batch normalization", "not in the engine (VGG16 and the FCN paper use none); FCNHead's, folded", "12"),
    ("image crop", "Crop (skip alignment, lesson 08); random crops = augmentation", "08"),
    ("training", "fit(lr, epochs, batch_size, optimizer, momentum, weight_decay, schedule), dropout "
                 "(the FCN paper's choices: Section 4.3)", "09"),
]
print("\nHyper-parameters to explore in an FCN (사용할 하이퍼파라미터/손 대볼곳) and where each lives here (lessons):")
for what, where, lessons_ in table:
    print(f"  * {what} [{lessons_}]\n      {where}")
print("No value is best for all problems: they are set by rules of thumb and experiment, e.g. with "
      "`fcn-scratch compare`.")

# %%
lesson.done(summary=[
    "The engine's backward pass measures VGG16's receptive fields (6, 16, 44, 100, 212 px) and a total stride of 32, "
    "the product of the strides.",
    "Stacked 3x3 convs see as far as one big kernel with fewer weights; without pooling VGG16 sees 27 px at over 40x "
    "the cost.",
    "Depthwise, 1-D and 3-D convolutions are the engine's Conv2d in disguise, checked against scipy and NumPy.",
    "U-Net's concatenation followed by a 1x1 conv is FCN's sum of scores; FCN-8s has fewer parameters than FCN-32s.",
    "A transposed conv trained from its bilinear start beats bilinear upsampling on unseen images.",
    "FCNHead's eval-mode BatchNorm folds into the conv before it; training changes parameters, never "
    "hyper-parameters.",
], exercises=[])

# %% [markdown]
# # Lesson 01: from classification to segmentation -- convolutionalization
#
# A classifier answers one question per image ("what is in it?"); a
# segmenter answers one per pixel ("what is here?"). FCN turns the first into
# the second without new ideas, only by rewriting the classifier's **fully
# connected (dense) layers as convolutions** -- *convolutionalization*. This lesson
#
# 1. compares the output shapes of classification and segmentation,
# 2. shows why a fully connected layer **loses position** and **fixes the input size**,
# 3. rewrites the study notes' dense layer (200 units over a 100x7x7 map) as a 7x7
#    convolution with 200 filters -- the same numbers, `[batch, 200]` vs `[batch, 200, 1, 1]`,
# 4. feeds it a 448 image (a 14x14 map) and gets an **8x8 map of predictions**:
#    every cell is the dense layer applied to one 7x7 window (the **sliding-window** view),
# 5. turns the following dense layers into **1x1 convolutions**,
# 6. proves that one pass of a convolutionalized classifier over a big image
#    equals running the classifier on every window, at a fraction of the work,
# 7. counts VGG16's **fc6 as a 7x7x512 -> 4096 convolution** (parameters kept) and
#    says why this engine's FCN, like the PyTorch FCN port it mirrors, uses a 1x1 fc6.
#
# Sources: the FCN paper (Long, Shelhamer & Darrell, "Fully Convolutional Networks for
# Semantic Segmentation", arXiv:1411.4038), section 3.1 "Adapting classifiers for dense
# prediction" (fully connected layers are convolutions whose kernels cover their whole
# input; the map they give equals the classifier on every patch, the work of overlapping
# patches shared) and section 4.1 (VGG16 convolutionalized); VGG16 itself: Simonyan &
# Zisserman, arXiv:1409.1556 (fc6 = 4096 units over pool5's 7x7x512). The study notes'
# examples: a dense layer of 200 units over a 100x7x7 map, and a 448 image whose 14x14 map
# gives 8x8 predictions; the PyTorch port's 1x1 fc6 "for convenience".
# Run: `python lessons/01_convolutionalization.py [--step] [--no-figures] [--figures DIR]`.

# %%
from _common import Lesson, draw_matrix  # first: puts the repo on sys.path, picks a headless backend

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from fcn_scratch.convolutionalize import Dense, dense_to_conv, dense_to_conv1x1
from fcn_scratch.functional import conv2d_forward, conv_output_size
from fcn_scratch.layers import Conv2d, MaxPool2d, ReLU
from fcn_scratch.models import FCN32s

lesson = Lesson("01_convolutionalization", "Classification to segmentation: convolutionalization")
rng = np.random.default_rng(1)
f64 = dict(dtype=np.float64)

# A toy classifier built from the engine's layers, VGG in miniature: two (3x3 conv, ReLU, 2x2 max-pool)
# blocks, then two dense layers. Its convolutions use no padding ('valid'), so a feature depends only
# on the pixels under it -- which makes step 6's comparison with cropped windows exact.
conv1, conv2 = Conv2d(3, 6, 3, **f64, seed=1), Conv2d(6, 8, 3, **f64, seed=2)
relu1, relu2, relu3 = ReLU(), ReLU(), ReLU()
pool1, pool2 = MaxPool2d(2), MaxPool2d(2)
fc1, fc2 = Dense(8 * 7 * 7, 10, **f64, seed=3), Dense(10, 4, **f64, seed=4)  # 8x7x7 features -> 10 -> 4 classes


def features(x):
    """(N, 3, H, W) -> (N, 8, ((H-2)/2-2)/2, ...): a 34x34 image gives the 7x7 map, as 224 does in VGG16."""
    return pool2.forward(relu2.forward(conv2.forward(pool1.forward(relu1.forward(conv1.forward(x))))))


def classify(x):
    """The classifier: features, flatten, dense, ReLU, dense -> (N, 4) class scores."""
    f = features(x)
    return fc2.forward(relu3.forward(fc1.forward(f.reshape(len(f), -1))))


# %%
lesson.step("Classification: one answer per image. Segmentation: one answer per pixel")
x = rng.standard_normal((2, 3, 34, 34))
scores = classify(x)
print(f"classifier:  image {x.shape} -> features {features(x).shape} -> flatten -> scores {scores.shape}")
lesson.check(scores.shape == (2, 4), "a classifier outputs (N, classes): one label per image")
fcn = FCN32s.tiny(4, **f64, seed=0)
logits = fcn.forward(x)
print(f"FCN-32s:     image {x.shape} -> logits {logits.shape} -> argmax over classes -> "
      f"label map {logits.argmax(axis=1).shape}")
lesson.check(logits.shape == (2, 4, 34, 34), "a segmenter outputs (N, classes, H, W): one label per pixel")

# %%
lesson.step("Why a fully connected layer loses position")
# One scene, seen through two 34x34 windows 4 pixels apart (4 = the two pools' total stride).
scene = rng.standard_normal((1, 3, 34, 38))
left, right = scene[..., :34], scene[..., 4:]
f_left, f_right = features(left), features(right)
print(f"features of the left view {f_left.shape}, of the right view {f_right.shape}")
lesson.close(f_right[..., :-1], f_left[..., 1:],
             "conv features move with the content: the right view's map is the left one shifted by one cell")
s_left, s_right = classify(left), classify(right)
print("dense scores, left view: ", s_left[0], "\ndense scores, right view:", s_right[0])
lesson.check(s_left.ndim == 2 and not np.allclose(s_left, s_right),
             "the dense scores (N, 4) just change: no axis is left on which a shift could show")
# Flattening makes every pixel an unrelated input column; the dense weights alone know which column was where.

# %%
lesson.step("Why a fully connected layer fixes the input size")
big = rng.standard_normal((1, 3, 62, 62))
f_big = features(big)
print(f"the convolutions take any size: 34x34 -> {f_left.shape[2:]},  62x62 -> {f_big.shape[2:]}")
try:
    fc1.forward(f_big.reshape(1, -1))
    refused = None
except ValueError as err:
    refused = str(err)
print("fc1 on the flattened 8x14x14 map:", refused)
lesson.check(refused is not None and str(fc1.in_features) in refused,
             f"fc1 has exactly {fc1.in_features} = 8*7*7 weights per unit, so it refuses 8*14*14 = "
             f"{8 * 14 * 14} inputs")
lesson.check(f_big.shape[1:] == (8, 14, 14), "while the convolutions handled the 62x62 image without complaint")

# %%
lesson.step("Convolutionalization: the dense layer 100x7x7 -> 200 is a 7x7 conv with 200 filters")
dense = Dense(100 * 7 * 7, 200, **f64, seed=5)  # 200 units, each a weighted sum of 100*7*7 = 4900 activations
conv = dense_to_conv(dense.weight, dense.bias, (100, 7, 7))  # weight (200, 4900) -> (200, 100, 7, 7)
fmap = rng.standard_normal((2, 100, 7, 7))
y_dense = dense.forward(fmap.reshape(2, -1))  # flatten C-major, as torch's x.view(N, -1)
y_conv = conv.forward(fmap)
print(f"dense: weight {dense.weight.shape}, output {y_dense.shape}   (Keras writes [batch size, 200])")
print(f"conv:  weight {conv.weight.shape}, output {y_conv.shape}   (Keras: [batch size, 1, 1, 200] in"
      f" TensorFlow's NHWC; NCHW here)")
print("first 5 outputs of image 0, dense:", y_dense[0, :5], "\n                            conv: ",
      y_conv[0, :5, 0, 0])
lesson.close(y_conv[:, :, 0, 0], y_dense, "the conv computes exactly the dense layer's 200 numbers")
lesson.check(conv.kernel_size == (7, 7) and conv.stride == (1, 1) and conv.padding == (0, 0),
             "recipe: as many filters as units, kernel = the input map's size, 'valid' padding, stride 1")
n_dense = dense.weight.size + dense.bias.size
n_conv = conv.weight.size + conv.bias.size
lesson.check(n_dense == n_conv == 4900 * 200 + 200, f"same parameters: {n_conv:,} (the weights are only reshaped)")

# %%
lesson.step("A 448 image: the 14x14 map gives an 8x8 map of predictions, one per 7x7 window")
fmap14 = rng.standard_normal((2, 100, 14, 14))  # what the backbone gives for a 448x448 image (448/32 = 14)
y14 = conv.forward(fmap14)
print(f"14x14 map -> conv output {y14.shape}: 14 - 7 + 1 = {conv_output_size(14, 7)} positions per axis")
lesson.check(y14.shape == (2, 200, 8, 8), "the same layer, unchanged, now gives 8x8 = 64 predictions")
by_window = np.empty_like(y14)
for i in range(8):
    for j in range(8):
        by_window[:, :, i, j] = dense.forward(fmap14[:, :, i : i + 7, j : j + 7].reshape(2, -1))
lesson.close(y14, by_window, "each of the 64 cells equals the dense layer applied to its 7x7 window of the map")
print("One map cell stands for 32x32 image pixels, so the window slides 32 pixels per step: "
      "cell (i, j) is\nthe classifier looking at the 224x224 crop that starts at pixel (32i, 32j) -- "
      "8 steps down, 8 across\n(exactly so when the convolutions are unpadded; step 7 proves it on a small net).")
crops = range(0, 448 - 224 + 1, 32)  # top rows of the 224-pixel crops that fit in 448, 32 apart: 0, 32, ..., 224
lesson.check(len(crops) == y14.shape[2] == y14.shape[3],
             f"{len(crops)} crop positions per axis (0, 32, ..., 224) = the {y14.shape[2]}x{y14.shape[3]} map the "
             f"conv returned")

fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), gridspec_kw={"width_ratios": [14, 8]})
axes[0].imshow(np.zeros((14, 14)), cmap="Greys", vmin=0, vmax=1)
axes[1].imshow(np.zeros((8, 8)), cmap="Greys", vmin=0, vmax=1)
for ax, n in ((axes[0], 14), (axes[1], 8)):
    ax.set_xticks(np.arange(-0.5, n, 1), minor=True), ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
    ax.grid(which="minor", color="0.75", lw=0.6)
    ax.set_xticks(range(0, n, 2)), ax.set_yticks(range(0, n, 2))
for (i, j), color in [((0, 0), "tab:blue"), ((3, 5), "tab:orange"), ((7, 7), "tab:green")]:
    axes[0].add_patch(Rectangle((j - 0.5, i - 0.5), 7, 7, fill=False, ec=color, lw=2.5))
    axes[0].plot(j, i, "s", color=color, ms=7)
    axes[1].add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, color=color))
    axes[1].text(j, i, f"{i},{j}", ha="center", va="center", fontsize=7, color="white")
axes[0].set_title("14x14x100 feature map of a 448 image\nthree of the 64 possible 7x7 windows")
axes[1].set_title("8x8x200 conv output\ncell (i, j) = dense layer on window (i, j)")
fig.suptitle("Convolutionalization = the dense layer slid over every 7x7 window in one pass", fontsize=11, y=1.04)
lesson.save(fig, "sliding_window")

# %%
lesson.step("The following dense layers become 1x1 convolutions")
dense2 = Dense(200, 10, **f64, seed=6)  # the next layer: 10 units on the 200 numbers
conv2_1x1 = dense_to_conv1x1(dense2.weight, dense2.bias)
z = conv2_1x1.forward(y14)  # (2, 200, 8, 8) -> (2, 10, 8, 8)
per_pixel = dense2.forward(y14.transpose(0, 2, 3, 1).reshape(-1, 200))  # every pixel's 200-vector, as a batch
print(f"1x1 conv: weight {conv2_1x1.weight.shape}, on {y14.shape} -> {z.shape}")
lesson.close(z.transpose(0, 2, 3, 1).reshape(-1, 10), per_pixel,
             "a 1x1 conv is the dense layer applied to the channel vector at every pixel")
lesson.close(conv2_1x1.forward(y_conv)[:, :, 0, 0], dense2.forward(y_dense),
             "on the 1x1 map of a 224 image it is exactly the old dense layer")

# %%
lesson.step("One pass over a big image = the classifier on every window, at a fraction of the work")
head1 = dense_to_conv(fc1.weight, fc1.bias, (8, 7, 7))  # the toy classifier's fc1 -> 7x7 conv
head2 = dense_to_conv1x1(fc2.weight, fc2.bias)  # fc2 -> 1x1 conv
dense_map = head2.forward(relu3.forward(head1.forward(features(big))))  # one pass over the 62x62 image
print(f"convolutionalized classifier on a 62x62 image -> {dense_map.shape}: an 8x8 map of 4 class scores")
stride = 4  # two 2x2 pools: one feature cell = 4 pixels
windows = np.empty_like(dense_map)
for i in range(8):
    for j in range(8):
        windows[:, :, i, j] = classify(big[:, :, stride * i : stride * i + 34, stride * j : stride * j + 34])
lesson.close(dense_map, windows, "cell (i, j) = the original classifier on the 34x34 crop at pixel (4i, 4j)")


def conv_flops(x):
    """FLOPs (2 per multiply-add) of the two 3x3 convolutions `features` runs on x, read off the engine's outputs."""
    y1 = conv1.forward(x)  # each output entry is one 3x3xC_in dot product
    y2 = conv2.forward(pool1.forward(relu1.forward(y1)))
    return 2 * 9 * (y1.size * conv1.in_channels + y2.size * conv2.in_channels)


once, per_window = conv_flops(big), conv_flops(big[:, :, :34, :34])
print(f"backbone FLOPs: one pass over 62x62 {once:,};  64 separate 34x34 windows {64 * per_window:,}"
      f"  ({64 * per_window / once:.1f}x more)")
lesson.check(64 * per_window > 10 * once,
             "overlapping windows share their features: one pass does over 10x less backbone work")

fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.6))
axes[0].imshow(big[0].mean(axis=0), cmap="Greys")
heat = dense_map[0, 0]
draw_matrix(axes[1], heat, "", fmt="{:.2f}", cmap="viridis", fontsize=7)
for (i, j), color in [((0, 0), "tab:blue"), ((2, 5), "tab:orange"), ((7, 7), "tab:red")]:
    axes[0].add_patch(Rectangle((stride * j - 0.5, stride * i - 0.5), 34, 34, fill=False, ec=color, lw=2.5))
    axes[1].add_patch(Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, ec=color, lw=3))
axes[0].set_title("random 62x62 input: three of the 64 crops\n(34x34, 4 px apart) the classifier would see")
axes[1].set_title("one pass of the convolutionalized net:\nscore of class 0 for every crop (a heat map)")
fig.suptitle("Toy classifier: the 8x8 map equals 64 separate classifications of overlapping crops", fontsize=11,
             y=1.04)
lesson.save(fig, "whole_network_windows")

# %%
lesson.step("VGG16's fc6 as a 7x7x512 -> 4096 conv keeps its parameters; this engine's fc6 is 1x1")
fc6_dense = 512 * 7 * 7 * 4096 + 4096  # Linear(25088, 4096): pool5 of a 224 image flattened
fc6_conv7 = int(np.prod((4096, 512, 7, 7))) + 4096  # the convolutionalized fc6
fc6_conv1 = int(np.prod((4096, 512, 1, 1))) + 4096  # fc6 of the PyTorch FCN port: nn.Conv2d(512, 4096, 1)
print(f"fc6 as a dense layer 25088 -> 4096:   {fc6_dense:>12,} parameters")
print(f"fc6 as a 7x7 conv, 512 -> 4096:       {fc6_conv7:>12,} parameters (the same weights, reshaped)")
print(f"fc6 as a 1x1 conv, 512 -> 4096:       {fc6_conv1:>12,} parameters (the PyTorch port and this engine)")
# (step 4 proved on real arrays that dense_to_conv keeps every parameter; VGG16's fc6 is too big to build here)
engine_fc6 = FCN32s.state_shapes(21)  # the engine's full-size FCN-32s (VGG16 widths, fc 4096), shapes only
n_fc6 = int(np.prod(engine_fc6["fc6.weight"])) + int(np.prod(engine_fc6["fc6.bias"]))
print(f"the engine's full-size FCN-32s: fc6.weight {engine_fc6['fc6.weight']}, {n_fc6:,} parameters")
lesson.check(engine_fc6["fc6.weight"] == (4096, 512, 1, 1) and n_fc6 == fc6_conv1,
             f"the engine's fc6 is the 1x1 one: {n_fc6:,} parameters, about 1/49 of VGG16's 7x7 fc6")
print(f"on a 224 image's 7x7 pool5 map: a 7x7 fc6 gives {conv_output_size(7, 7)}x{conv_output_size(7, 7)}, "
      f"a 1x1 fc6 gives {conv_output_size(7, 1)}x{conv_output_size(7, 1)} score cells")
lesson.check(conv_output_size(7, 7) == 1 and conv_output_size(7, 1) == 7,
             "a 7x7 fc6 shrinks the map by 6 in each direction; a 1x1 fc6 keeps its size")
# An image smaller than 224 has pool5 smaller than 7x7, and a 7x7 fc6 cannot run at all:
pool5_small = rng.standard_normal((1, 8, 2, 2))  # e.g. a 37x53 image: ceil(37/32) x ceil(53/32) = 2x2
try:
    conv2d_forward(pool5_small, rng.standard_normal((4, 8, 7, 7)))
    refused = None
except ValueError as err:
    refused = str(err)
print("7x7 fc6 on a 2x2 pool5:", refused)
lesson.check(refused is not None, "a 7x7 fc6 refuses a pool5 smaller than 7x7 (the paper pads the input by 100 "
                                  "pixels instead; lesson 08)")
tiny = FCN32s.tiny(4, **f64, seed=0)
print(f"this engine's FCN-32s (tiny preset): fc6 weight {tiny.fc6.weight.shape}, fc7 weight {tiny.fc7.weight.shape}")
out = tiny.forward(rng.standard_normal((1, 3, 37, 53)))
lesson.check(tiny.fc6.kernel_size == (1, 1) and out.shape == (1, 4, 37, 53),
             "with a 1x1 fc6 (as the PyTorch port, 'for convenience') a 37x53 image works and keeps its size")
# The price: VGG's trained 7x7 fc6 weights do not fit a 1x1 fc6, so fc6 starts from scratch. This engine
# trains its backbone from scratch anyway (no pretrained VGG offline), so it pays nothing.

# %%
lesson.done(summary=[
    "A classifier outputs (N, classes); an FCN outputs (N, classes, H, W): a label per pixel.",
    "Conv features move with the content; a dense layer keeps no position and refuses any other input size.",
    "A dense layer over a 100x7x7 map is exactly a 7x7 conv with 200 filters; on a 14x14 map it gives 8x8 "
        "predictions, each the dense layer on its window. Later dense layers are exactly 1x1 convs.",
    "One pass of the convolutionalized classifier equals the classifier on all 64 crops, with over 10x less "
        "backbone work.",
    "The engine's fc6 is 1x1 (2.1 M parameters, not VGG16's 7x7 with 102.8 M), so any input size works.",
], exercises=[])

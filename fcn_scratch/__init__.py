"""fcn_scratch: Fully Convolutional Networks (FCN-32s/16s/8s) from scratch in NumPy.

Data flows one way through the modules:

    kernels -> functional -> layers -> models -> train / metrics / cli

``fcn_scratch.kernels``     Numba hot loops (im2col, col2im, max-pool) and their NumPy twins
``fcn_scratch.functional``  pure ``forward -> (y, cache)`` / ``backward(dy, cache)`` pairs
``fcn_scratch.layers``      Conv2d, ConvTranspose2d, MaxPool2d, ReLU, Dropout2d, SoftmaxCrossEntropy, ...
``fcn_scratch.gradcheck``   finite-difference gradient checks and the report
"""

__version__ = "0.1.0"

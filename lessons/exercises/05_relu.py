"""Exercise 05 (lesson 04): ReLU forward and backward.

Write both functions, then grade them:

    fcn-scratch exercise check relu

You may use numpy. Do not import the engine's ``fcn_scratch.functional.relu_forward``
/ ``relu_backward`` (nor ``fcn_scratch.layers.ReLU``): those are the answers.

한국어
------
연습 문제 05 (레슨 04): ReLU 순전파(forward pass)와 역전파(backward pass).

두 함수를 작성한 뒤 채점하세요:

    fcn-scratch exercise check relu --lang ko

numpy는 써도 됩니다. 엔진의 ``fcn_scratch.functional.relu_forward`` / ``relu_backward``
(와 ``fcn_scratch.layers.ReLU``)는 import하지 마세요: 그것이 정답입니다.
"""

import numpy as np


def relu_forward(x):
    """``y = max(x, 0)`` elementwise: returns ``(y, cache)``.

    x any shape, e.g. ``(N, C, H, W)``; y the same shape and dtype. The cache
    is what the backward needs (the mask of positive inputs is enough).

    한국어: 원소별 ``y = max(x, 0)``. ``(y, cache)``를 반환합니다.

    x는 어떤 모양이든 됩니다(예: ``(N, C, H, W)``). y는 x와 모양과 dtype이 같습니다.
    캐시에는 역전파에 필요한 것을 둡니다(양수 입력의 마스크면 충분합니다).
    """
    raise NotImplementedError("write relu_forward (exercise 05)")


def relu_backward(dy, cache):
    """``dx = dy * [x > 0]``: the gradient passes where the input was positive.

    At exactly ``x = 0`` ReLU has a kink; its subgradient there is taken as 0
    (PyTorch's choice), so the test is ``x > 0``, not ``x >= 0``. Keep dy's
    dtype and never write into dy.

    한국어: ``dx = dy * [x > 0]``: 입력이 양수였던 곳으로만 기울기(gradient)가 지나갑니다.

    정확히 ``x = 0``에서 ReLU는 꺾이므로, 그곳의 서브그래디언트는 0으로 정합니다(PyTorch의
    선택). 그래서 조건은 ``x >= 0``이 아니라 ``x > 0``입니다. dy의 dtype을 지키고 dy에
    값을 써 넣지 마세요.
    """
    raise NotImplementedError("write relu_backward (exercise 05)")

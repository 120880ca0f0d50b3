"""The first conv + ReLU + 2×2 max pool, rewritten exactly as space-to-depth (s2d) + one conv.

A benchmark candidate, not part of the package: `benchmarks/encoder_latency.py` measured it
1.3–2.9× faster than conv1 + pool1 alone but within noise on the whole encoder at batch 1
(`docs/performance.md`), so `SymbolEncoder` does not use it.

`SymbolEncoder`'s first stage is a K×K conv with few input channels (one, for grayscale),
then ReLU, then a 2×2/stride-2 max pool. Each pooled output reads a (K+1)×(K+1) input patch
that starts on an even row and column, so the stage can be written as:

1. space-to-depth with block 2: ``(B, H, W, C) -> (B, H/2, W/2, 4·C)`` (a reshape and a
   transpose; the input is first cropped to the rows and columns the pooled output reads);
2. one ``ceil((K+1)/2)``-square valid conv with ``4·F`` filters, one group of ``F`` per
   position of the 2×2 pool window (each group is the K×K kernel shifted by that position
   within the 2×2 block grid, zeros elsewhere); no bias;
3. the max over each group of 4;
4. the bias, then ReLU.

ReLU and a bias shared by the four window positions commute with the max (both are monotone
non-decreasing in their input), so this is the same function as conv → bias → ReLU → pool;
only the order of the floating-point sums differs. Padding ``"same"`` pads the input as
Keras does and takes the valid path.

It trades FLOPs for shape: ``ceil((K+1)/2)²·4·C·4·F`` multiply-adds per pooled output instead
of ``4·K²·C·F`` (1.78× for K=3), for a conv with four times the input channels and no
separate pool over a full-resolution map.

Example:
>>> import numpy as np
>>> kernel = np.random.default_rng(0).standard_normal((3, 3, 1, 32)).astype("float32")
>>> bias = np.zeros(32, "float32")
>>> images = np.random.default_rng(1).random((2, 48, 48, 1)).astype("float32")
>>> tuple(s2d_conv_relu_pool(images, kernel, bias).shape)
(2, 23, 23, 32)
"""

from __future__ import annotations

import math

from keras import ops

_POOL = 2
_ACTIVATIONS = ("relu", "linear", None)


def s2d_kernel(kernel):
    """Rearrange a K×K conv kernel (HWIO) into the s2d stem's kernel, with `keras.ops`.

    Works on a numpy array, a tensor or a Keras variable (so gradients reach the kernel).

    Args:
        kernel: array of shape ``(K, K, C, F)``.

    Returns:
        tensor of shape ``(S, S, 4·C, 4·F)`` with ``S = ceil((K + 1) / 2)``: input
        channel ``(r·2 + s)·C + c`` is pixel ``(r, s)`` of a 2×2 block, channel ``c``;
        output channel ``(di·2 + dj)·F + f`` is filter ``f`` at pool-window position
        ``(di, dj)``.

    Example:
    >>> import numpy as np
    >>> tuple(s2d_kernel(np.ones((3, 3, 1, 32), "float32")).shape)
    (2, 2, 4, 128)
    """
    shape = tuple(kernel.shape)
    if len(shape) != 4 or shape[0] != shape[1]:
        raise ValueError(
            f"`kernel` must be a square HWIO conv kernel (K, K, C, F). Received: shape={shape}"
        )
    size, channels, filters = int(shape[0]), int(shape[2]), int(shape[3])
    side = math.ceil((size + 1) / _POOL)
    span = _POOL * side
    kernel = ops.convert_to_tensor(kernel)
    # The kernel at every pool-window offset (di, dj) inside a (2·side)² patch ...
    shifted = [
        ops.pad(kernel, ((di, span - size - di), (dj, span - size - dj), (0, 0), (0, 0)))
        for di in range(_POOL)
        for dj in range(_POOL)
    ]
    patch = ops.stack(shifted, axis=0)  # (di·2 + dj, 2·side, 2·side, C, F)
    # ... then the patch's 2×2 blocks folded into channels:
    # (d, p, r, q, s, c, f) -> (p, q, r, s, c, d, f)
    patch = ops.reshape(patch, (_POOL * _POOL, side, _POOL, side, _POOL, channels, filters))
    patch = ops.transpose(patch, (1, 3, 2, 4, 5, 0, 6))
    return ops.reshape(patch, (side, side, _POOL * _POOL * channels, _POOL * _POOL * filters))


def space_to_depth(images, block: int = _POOL):
    """``(B, H, W, C) -> (B, H/block, W/block, block²·C)``, channel order ``(r, s, c)``.

    `H` and `W` must be multiples of `block` (`s2d_conv_relu_pool` crops to that first).

    Example:
    >>> import numpy as np
    >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> np.asarray(space_to_depth(x))[0, 0, 0].tolist()
    [0.0, 1.0, 4.0, 5.0]
    """
    batch, height, width, channels = ops.shape(images)
    x = ops.reshape(images, (batch, height // block, block, width // block, block, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (batch, height // block, width // block, block * block * channels))


def s2d_conv_relu_pool(
    images, kernel, bias=None, padding: str = "valid", activation="relu", kernel_size=None
):
    """``maxpool2x2(activation(conv(images, kernel) + bias))``, computed as s2d + one conv.

    The same function as a Keras ``Conv2D(F, K, padding=padding, activation=activation)``
    followed by ``MaxPooling2D(2)`` (valid, floor), to float tolerance; see the module
    docstring for how.

    Args:
        images: tensor ``(B, H, W, C)``, static or dynamic `H`, `W`.
        kernel: array ``(K, K, C, F)`` (HWIO, as `Conv2D.kernel`) or an already rearranged
            `s2d_kernel` of it (``(S, S, 4·C, 4·F)``; pass it to skip the rearrangement on
            every call).
        bias: array ``(F,)`` or None.
        padding: ``"valid"`` or ``"same"``, as the conv's.
        activation: ``"relu"``, ``"linear"`` or None: an activation that commutes with max.
        kernel_size: int or None. `K`, needed only with a pre-rearranged kernel of an even
            `K` (an odd ``2·S - 1`` is assumed).

    Returns:
        tensor ``(B, floor(H1 / 2), floor(W1 / 2), F)``, with ``H1, W1`` the conv's output size
        (``H - K + 1`` for valid padding, ``H`` for same).

    Example:
    >>> import numpy as np
    >>> kernel = np.ones((3, 3, 1, 8), "float32")
    >>> tuple(s2d_conv_relu_pool(np.ones((1, 19, 20, 1), "float32"), kernel).shape)
    (1, 8, 9, 8)
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(
            "The s2d stem is exact only for activations that commute with max. "
            f"Expected one of {_ACTIVATIONS}. Received: activation={activation!r}"
        )
    if padding not in ("valid", "same"):
        raise ValueError(f"Expected padding 'valid' or 'same'. Received: padding={padding!r}")
    kernel_shape = tuple(kernel.shape)
    if len(kernel_shape) != 4:
        raise ValueError(f"`kernel` must be 4-D. Received: shape={kernel_shape}")
    in_channels = int(images.shape[-1])
    if kernel_shape[2] == in_channels:  # a K×K HWIO kernel: rearrange it here
        size = int(kernel_shape[0])
        packed = s2d_kernel(kernel)
    elif kernel_shape[2] == _POOL * _POOL * in_channels and kernel_shape[3] % 4 == 0:
        packed = kernel
        size = kernel_size if kernel_size is not None else _POOL * int(kernel_shape[0]) - 1
        if math.ceil((size + 1) / _POOL) != int(kernel_shape[0]):
            raise ValueError(
                f"kernel_size={size} does not match the s2d kernel's side {kernel_shape[0]}."
            )
    else:
        raise ValueError(
            f"`kernel` must be (K, K, {in_channels}, F) or its s2d_kernel "
            f"(S, S, {4 * in_channels}, 4·F). Received: shape={kernel_shape}"
        )
    side = int(packed.shape[0])
    filters = int(packed.shape[3]) // (_POOL * _POOL)

    x = images
    if padding == "same":  # Keras' (and TensorFlow's) "same": the extra pixel goes after
        total = size - 1
        before = total // 2
        x = ops.pad(x, ((0, 0), (before, total - before), (before, total - before), (0, 0)))
    height, width = ops.shape(x)[1], ops.shape(x)[2]
    # Pooled output rows: floor((H - K + 1) / 2); they read input rows 0 .. 2·rows + K - 1.
    # The s2d conv reads 2·(rows + side - 1) rows: at most H for an odd K, H + 1 for an even
    # one, whose extra row meets only zero weights (so one zero row/column is padded on).
    if size % 2 == 0:
        x = ops.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
    rows = (height - size + 1) // _POOL
    cols = (width - size + 1) // _POOL
    x = x[:, : _POOL * (rows + side - 1), : _POOL * (cols + side - 1), :]
    packed = ops.convert_to_tensor(packed, dtype=x.dtype)
    x = space_to_depth(x)
    y = ops.conv(x, packed, padding="valid")
    batch = ops.shape(y)[0]
    y = ops.reshape(y, (batch, ops.shape(y)[1], ops.shape(y)[2], _POOL * _POOL, filters))
    y = ops.max(y, axis=3)
    if bias is not None:
        y = y + ops.convert_to_tensor(bias, dtype=y.dtype)
    if activation == "relu":
        y = ops.relu(y)
    return y

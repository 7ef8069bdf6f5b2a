"""Batched, stateless-seeded image transforms (TensorFlow ops inside the input pipeline).

One fused projective transform per batch (``ImageProjectiveTransformV3``)
replaces the per-image Python loops of the published notebooks; every random
draw comes from a ``seed`` pair, so the same (seed, step) gives the same batch.
"""

from __future__ import annotations

import math

import tensorflow as tf


def affine_parameters(seed_pair, n: int, aug: dict):
    """Per-image parameters drawn statelessly from ``seed_pair``: a dict of float32 tensors.

    ``apply`` (1 with probability ``aug['probability']``), ``scale_x``,
    ``scale_y`` (in ``aug['scale']``), ``rotation`` and ``shear`` (radians,
    within +-``rotation_deg`` / +-``shear_deg``), ``tx``, ``ty`` (pixels, within
    +-``translation_px``). Images not applied get the identity.
    """
    u = tf.random.stateless_uniform([n, 7], seed=tf.cast(seed_pair, tf.int64), dtype=tf.float32)
    lo, hi = float(aug["scale"][0]), float(aug["scale"][1])
    sym = lambda col, r: (2.0 * u[:, col] - 1.0) * r  # noqa: E731
    apply = tf.cast(u[:, 0] < float(aug["probability"]), tf.float32)
    p = {
        "scale_x": lo + (hi - lo) * u[:, 1],
        "scale_y": lo + (hi - lo) * u[:, 2],
        "rotation": sym(3, math.radians(aug["rotation_deg"])),
        "shear": sym(4, math.radians(aug["shear_deg"])),
        "tx": sym(5, float(aug["translation_px"])),
        "ty": sym(6, float(aug["translation_px"])),
    }
    identity = {"scale_x": 1.0, "scale_y": 1.0, "rotation": 0.0, "shear": 0.0, "tx": 0.0, "ty": 0.0}
    out = {k: apply * v + (1.0 - apply) * identity[k] for k, v in p.items()}
    out["apply"] = apply
    return out


def affine_matrices(params: dict, height: int = 28, width: int | None = None):
    """Forward 2x3 matrices (input pixel -> output pixel, (x=column, y=row)) and the 8-vectors
    ``ImageProjectiveTransformV3`` wants (output -> input), for images of ``height`` x ``width``
    (``width``: ``height`` when not given).

    The linear part is scikit-image's ``AffineTransform`` (what the kernel
    called per image): ``[[sx cos r, -sy sin(r + sh)], [sx sin r, sy cos(r + sh)]]``,
    applied about the image centre ((width - 1) / 2, (height - 1) / 2), then the translation.
    """
    sx, sy, r, sh = params["scale_x"], params["scale_y"], params["rotation"], params["shear"]
    a, b = sx * tf.cos(r), -sy * tf.sin(r + sh)
    c, d = sx * tf.sin(r), sy * tf.cos(r + sh)
    cx, cy = ((width or height) - 1) / 2.0, (height - 1) / 2.0
    tx, ty = params["tx"], params["ty"]
    # forward: p_out = M (p_in - centre) + centre + t
    fwd = tf.stack([tf.stack([a, b, cx + tx - a * cx - b * cy], -1),
                    tf.stack([c, d, cy + ty - c * cx - d * cy], -1)], 1)
    det = a * d - b * c
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    # inverse: p_in = M^-1 (p_out - centre - t) + centre
    ox, oy = cx + tx, cy + ty
    inv = tf.stack([ia, ib, cx - ia * ox - ib * oy, ic, id_, cy - ic * ox - id_ * oy,
                    tf.zeros_like(a), tf.zeros_like(a)], -1)
    return fwd, inv


def augment_batch(x, seed_pair, aug: dict):
    """One fused projective transform for the whole float batch N x H x W x C (bilinear, zero fill), about
    each image's centre."""
    n = tf.shape(x)[0]
    _, inv = affine_matrices(affine_parameters(seed_pair, n, aug), height=x.shape[1] or 28, width=x.shape[2])
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=inv, output_shape=tf.shape(x)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")


def pad_crop_flip(images, seed, *, pad: int = 4, flip_probability: float = 0.5):
    """Reflect-pad, random crop back to size and horizontal flip, per image, for the whole batch at once.

    No per-image Python loop: each image's crop offset and flip become its own
    row and column indices into the padded batch, taken by two batched gathers
    (rows, then columns in mirrored order where the image flips), so every
    output pixel is an exact copy of a padded-image pixel. About 1.45x the
    throughput of one ``ImageProjectiveTransformV3`` with nearest sampling,
    with identical output (``tests/test_cifar.py``).
    """
    seed = tf.cast(seed, tf.int64)
    n = tf.shape(images)[0]
    h, w = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    offsets = tf.random.stateless_uniform([n, 2], tf.random.experimental.stateless_fold_in(seed, 11),
                                          0, 2 * pad + 1, dtype=tf.int32)
    flip = tf.random.stateless_uniform([n], tf.random.experimental.stateless_fold_in(seed, 12)) < flip_probability
    rows = offsets[:, :1] + tf.range(h)[None]
    cols = offsets[:, 1:] + tf.where(flip[:, None], (w - 1) - tf.range(w)[None], tf.range(w)[None])
    return tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)

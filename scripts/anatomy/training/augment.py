"""Batched, stateless-seeded image transforms (TensorFlow ops inside the input pipeline).

One fused projective transform per batch (``ImageProjectiveTransformV3``)
replaces the per-image Python loops of the published notebooks; every random
draw comes from a ``seed`` pair, so the same (seed, step) gives the same batch.
"""

from __future__ import annotations

import math

import tensorflow as tf


def affine_params(n, seed, *, rotation_deg=0.0, shear_deg=0.0, scale=(1.0, 1.0), translate_px=0.0):
    """Per-image random parameters: angle, shear (radians), scale_x, scale_y, tx, ty (pixels)."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 6)

    def u(k, lo, hi):
        return tf.random.stateless_uniform([n], seeds[k], lo, hi)

    rad = math.pi / 180.0
    return {
        "angle": u(0, -rotation_deg * rad, rotation_deg * rad),
        "shear": u(1, -shear_deg * rad, shear_deg * rad),
        "scale_x": u(2, scale[0], scale[1]),
        "scale_y": u(3, scale[0], scale[1]),
        "tx": u(4, -translate_px, translate_px),
        "ty": u(5, -translate_px, translate_px),
    }


def affine_matrices(params, height: int, width: int):
    """Forward 3x3 matrices (output = M @ input, pixel coordinates) about the image centre."""
    a, sh = params["angle"], params["shear"]
    sx, sy, tx, ty = params["scale_x"], params["scale_y"], params["tx"], params["ty"]
    cos, sin = tf.cos(a), tf.sin(a)
    # rotation @ shear @ scale
    m00 = sx * cos
    m01 = sy * (cos * tf.tan(sh) - sin)
    m10 = sx * sin
    m11 = sy * (sin * tf.tan(sh) + cos)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    b0 = cx - m00 * cx - m01 * cy + tx
    b1 = cy - m10 * cx - m11 * cy + ty
    zeros, ones = tf.zeros_like(m00), tf.ones_like(m00)
    return tf.reshape(tf.stack([m00, m01, b0, m10, m11, b1, zeros, zeros, ones], axis=1), [-1, 3, 3])


def apply_affine(images, matrices):
    """Warp a batch N x H x W x C by forward matrices (bilinear, zero fill)."""
    inv = tf.linalg.inv(matrices)
    flat = tf.reshape(inv, [-1, 9])[:, :8] / tf.reshape(inv, [-1, 9])[:, 8:9]
    h, w = tf.shape(images)[1], tf.shape(images)[2]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=tf.cast(flat, tf.float32), output_shape=tf.stack([h, w]),
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")


def random_affine(images, seed, *, rotation_deg=0.0, shear_deg=0.0, scale=(1.0, 1.0), translate_px=0.0,
                  probability: float = 1.0):
    """Random affine per image, applied with ``probability`` (others pass unchanged)."""
    n = tf.shape(images)[0]
    params = affine_params(n, seed, rotation_deg=rotation_deg, shear_deg=shear_deg, scale=scale,
                           translate_px=translate_px)
    m = affine_matrices(params, images.shape[1], images.shape[2])
    apply = tf.random.stateless_uniform([n], tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 7)) < probability
    m = tf.where(apply[:, None, None], m, tf.eye(3, batch_shape=[n]))
    return apply_affine(images, m)


def pad_crop_flip(images, seed, *, pad: int = 4, flip_probability: float = 0.5):
    """Reflect-pad, random crop back to size and horizontal flip, per image, batched by indexing.

    No per-image Python loop: per-image offsets become index grids that one
    ``tf.gather`` per axis applies to the whole batch (airbench style).
    """
    seed = tf.cast(seed, tf.int64)
    n = tf.shape(images)[0]
    h, w = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    offsets = tf.random.stateless_uniform([n, 2], tf.random.experimental.stateless_fold_in(seed, 11),
                                          0, 2 * pad + 1, dtype=tf.int32)
    rows = offsets[:, :1] + tf.range(h)[None, :]
    cols = offsets[:, 1:] + tf.range(w)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    out = tf.gather(out, cols, axis=2, batch_dims=1)
    flip = tf.random.stateless_uniform([n], tf.random.experimental.stateless_fold_in(seed, 12)) < flip_probability
    return tf.where(flip[:, None, None, None], out[:, :, ::-1, :], out)

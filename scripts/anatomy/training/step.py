"""A model's training step compiled once for every batch size."""

from __future__ import annotations


def make_train_step(model):
    """``step(x, y) -> loss``: what ``model.train_on_batch`` does, traced once for any batch size.

    The same computation as Keras's own ``train_step`` (the forward pass in
    training mode, the compiled loss, loss scaling under ``mixed_float16``, the
    optimizer's update), without its per-call overhead, and with an unknown
    batch dimension in the signature: ``train_on_batch`` traces again when the
    batch size first changes (every phase of the coreset selection grows the
    set), and Keras's wrapper takes about twice as long to trace as this one.
    Metrics are not updated; the caller scores the model itself.
    """
    import tensorflow as tf

    def spec(shape):
        return tf.TensorSpec((None, *shape[1:]), tf.float32)

    opt = model.optimizer
    if not opt.built:  # its variables exist before the trace (and before a backup is loaded into them)
        opt.build(model.trainable_variables)

    @tf.function(input_signature=[spec(model.input_shape), spec(model.output_shape)])
    def step(x, y):
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
            scaled = opt.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_weights)
        opt.apply_gradients(zip(grads, model.trainable_weights))
        return loss

    return step

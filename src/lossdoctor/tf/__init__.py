"""Plain TensorFlow models (``tf.Module``) with hand-written losses, as in the three stories.

``ld.diagnose(module, x, y, loss_fn)`` dispatches here; ``import lossdoctor`` never imports
TensorFlow.
"""

"""Keras 3 (torch and TensorFlow backends): a probe that fills the same :class:`~lossdoctor.Trace`.

Importing this package imports Keras; ``import lossdoctor`` never does.
"""

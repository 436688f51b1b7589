"""One module per execution model, all with the same vocabulary.

Use :func:`critsec.runtime` to get one by name; the classes here are
public for type annotations and ``isinstance`` checks.
"""

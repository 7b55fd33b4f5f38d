"""Code generation: the generate stage (generate.py, with the templates' values from context.py)
writes a PlatformIO project around a model library written by a backend (tflm.py: C array +
TFLM interpreter; aot/: model compiled to plain C)."""

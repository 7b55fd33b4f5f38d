"""Code generation: a PlatformIO project (project.py) around a model library written by a
backend (tflm.py: C array + TFLM interpreter; aot/: model compiled to plain C)."""

"""Reading and analysing int8 .tflite models."""

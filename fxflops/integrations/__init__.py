"""fxflops where models are trained: exact step FLOPs at any batch shape (:mod:`.step_flops`), and callbacks that log
FLOPs, TFLOP/s and MFU from Lightning's (:mod:`.lightning`) and Hugging Face's (:mod:`.transformers`) trainers.
The trainer modules import their trainer; this package imports nothing heavy."""

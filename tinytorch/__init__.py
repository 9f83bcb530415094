"""tinytorch: a small PyTorch built from scratch, one literate module at a time.

The modules in `tinytorch.core` are generated from the lessons in `modules/` by `tito export`.
"""
__version__ = "0.1.0"

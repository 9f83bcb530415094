"""The course's core: each submodule is exported from one lesson in `modules/`."""

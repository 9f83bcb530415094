"""What a checkpoint of module 08 says about itself, read before a model exists to load it into."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def checkpoint_description(path: Path) -> dict:
    """The plain values the milestone stored in a checkpoint's `extra` (vocabulary, model shape, ...), read before
    a model exists to load it into: module 08 keeps them as JSON in the archive's `__meta__` entry."""
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["__meta__"]))
    return {key["value"]: value.get("value") for key, value in meta["extra"]["dict"]}

"""Batches are lists of sample dicts; the model's data preprocessor stacks and normalises them on the device."""
from typing import List, Sequence

from .registry import FUNCTIONS


@FUNCTIONS.register_module()
def sample_list_collate(samples: Sequence[dict]) -> List[dict]:
    """Keep the samples as they are (sizes may differ); ``tasks`` preprocessors do the batching."""
    return list(samples)

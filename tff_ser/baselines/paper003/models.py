"""Paper 003's spectrogram branch (Sun et al., section 3.3): DARTS at its settings.

The search space, search network and derived network are :mod:`tff_ser.darts`; these
builders fix paper 003's choices (N = 4 nodes, L = 3 cells, C = 6 channels) as defaults.
"""
from __future__ import annotations

from typing import Optional, Sequence

from tff_ser import darts


def darts_search_003(input_shape: Sequence[int] = (140, 140), num_classes: int = 4, *,
                     cells: int = 3, channels: int = 6, nodes: int = 4, input_pool: int = 1,
                     seed: Optional[int] = None):
    """Paper 003's DARTS search network (Table 3's 0.13 M parameters at L = 3, C = 6).

    Examples
    --------
    >>> darts_search_003().count_params()
    132498
    """
    return darts.darts_search_network(input_shape, num_classes, cells=cells, channels=channels,
                                      nodes=nodes, input_pool=input_pool, seed=seed)


def darts_derived_003(input_shape: Sequence[int] = (140, 140), num_classes: int = 4, *,
                      genotype=None, cells: int = 3, channels: int = 6, input_pool: int = 1,
                      seed: Optional[int] = None):
    """A searched cell (``genotype=``, a search's ``genotype.json``) as paper 003's L = 3, C = 6
    network; default DARTS's CIFAR-10 cell (:data:`tff_ser.darts.DARTS_V2`)."""
    return darts.derived_network(input_shape, num_classes, genotype=genotype, cells=cells,
                                 channels=channels, input_pool=input_pool, seed=seed)

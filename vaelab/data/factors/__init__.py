"""Datasets with known generative factors, for disentanglement metrics: dSprites, 3D Shapes and others.

A :class:`FactorDataset` is a full grid of images, one for each combination of its factors' values, in row-major
order over ``factor_sizes`` (``grid``). It samples factor combinations, renders or reads their images, and carves a
seeded random subset into an ordinary :class:`Dataset` for training (``to_dataset``; ``load_dataset("dsprites")``
does that). Metrics use it directly through :func:`load_factor_dataset`, which finds each dataset by name in
``FACTOR_DATASETS`` (``registry``), where its module registers it:

- ``dsprites``: the official dSprites file (Matthey et al. 2017), read without unpickling anything (``dsprites``,
  reading ``.npz`` members with ``npzfile``);
- ``dsprites-procedural``: the same factor grid rendered here, deterministically, needing no file (``procedural``);
- ``3dshapes``: the official ``3dshapes.h5`` (Burgess & Kim 2018), read lazily with h5py (``shapes3d``);
- ``npz``: any factor grid stored as ``images`` + ``factor_sizes`` in an ``.npz`` (:class:`NpzFactorDataset`,
  ``npz``).

A new factor dataset is one module with a :class:`FactorDataset` subclass and a loader
``@FACTOR_DATASETS.register(name) def load(data_dir, download)``, imported below.
"""
from .grid import FactorDataset
from .npzfile import NpyMember, npz_members
from .registry import FACTOR_DATASETS, FactorSplits, factor_split_dataset, load_factor_dataset
from .dsprites import DSPRITES_FILE, DSPRITES_NAMES, DSPRITES_SIZES, DSPRITES_SOURCE, DSprites  # registers
from .procedural import HEART_HALF_WIDTH, HEART_MID_Y, ProceduralDSprites  # registers
from .shapes3d import SHAPES3D_FILE, SHAPES3D_SOURCE, Shapes3D  # registers
from .npz import NpzFactorDataset  # registers

__all__ = [
    "FactorDataset", "FACTOR_DATASETS", "load_factor_dataset", "FactorSplits", "factor_split_dataset",
    "NpyMember", "npz_members", "DSprites", "DSPRITES_FILE", "DSPRITES_SOURCE", "DSPRITES_NAMES", "DSPRITES_SIZES",
    "ProceduralDSprites", "HEART_HALF_WIDTH", "HEART_MID_Y", "Shapes3D", "SHAPES3D_FILE", "SHAPES3D_SOURCE",
    "NpzFactorDataset",
]

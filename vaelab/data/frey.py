"""Frey Faces: 1,965 grey 28x20 images of Brendan Frey's face, the continuous-data experiment of Kingma & Welling
(2014, §5) and of the VampPrior paper (Tomczak & Welling 2018).

vaelab reads ``frey_faces_uint8.npy``, uint8 [1965, 28, 20], without unpickling (``allow_pickle=False``). The
official file is Sam Roweis' ``frey_rawface.mat`` (variable ``ff``, 560 x 1965, one image a column, each row-major
28 x 20); a download is converted to the ``.npy`` (:func:`convert_mat`), whose sha256 is then checked.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .errors import DataError

NPY = "frey_faces_uint8.npy"
MAT = "frey_rawface.mat"
SHAPE = (1965, 28, 20)


def parse_npy(data: bytes, path: Path) -> np.ndarray:
    """uint8 [1965, 28, 20] from the content of ``frey_faces_uint8.npy`` (never unpickled)."""
    try:
        faces = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{path}: not a readable .npy file without pickles ({err}); delete it and get it again") from err
    if faces.shape != SHAPE or faces.dtype != np.uint8:
        raise DataError(f"{path}: holds {faces.dtype} {list(faces.shape)}; Frey Faces are uint8 {list(SHAPE)}")
    return faces


def convert_mat(mat: Path, folder: Path) -> None:
    """Write ``frey_faces_uint8.npy`` into ``folder`` from Roweis' ``frey_rawface.mat``: ``ff`` transposed (an image a
    row) and reshaped row-major to 28 x 20, saved without pickles."""
    from scipy.io import loadmat  # only a download needs it
    from scipy.io.matlab import MatReadError

    try:
        ff = loadmat(mat)["ff"]
    except (MatReadError, ValueError, OSError, KeyError, TypeError) as err:
        raise DataError(f"not the MATLAB file of Frey Faces with a variable ff ({type(err).__name__}: {err})") from err
    if ff.shape != (SHAPE[1] * SHAPE[2], SHAPE[0]) or ff.dtype != np.uint8:
        raise DataError(f"its ff is {ff.dtype} {list(ff.shape)}, not uint8 [560, 1965]")
    np.save(folder / NPY, np.ascontiguousarray(ff.T.reshape(SHAPE)), allow_pickle=False)

"""vaelab.data.factors: the procedural dSprites renderer, and the official dSprites, 3D Shapes and generic .npz
layouts on small files written here (their factor grids shrunk by monkeypatching)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vaelab.data import (
    DATASETS, DataError, DSprites, FactorDataset, NpzFactorDataset, ProceduralDSprites, Shapes3D, load_dataset,
    load_factor_dataset,
)
from vaelab.data import factors as factors_module
from vaelab.registry import Registry


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No test sees the user's cache or $VAELAB_DATA unless it sets them."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("VAELAB_DATA", raising=False)


SPRITES = ProceduralDSprites()
SQUARE, ELLIPSE, HEART = 0, 1, 2


def sprite(shape=SQUARE, scale=5, orientation=0, x=15, y=15) -> np.ndarray:
    return SPRITES.images(np.array([[shape, scale, orientation, x, y]]))[0, 0].numpy()


def centroid(mask: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(mask)
    return cols.mean(), rows.mean()


# --- the procedural dSprites -------------------------------------------------------------------------------


def test_procedural_grid_and_images():
    d = load_factor_dataset("dsprites-procedural")
    assert isinstance(d, FactorDataset) and d.num_images == 737280
    assert (d.factor_names, d.factor_sizes) == (["shape", "scale", "orientation", "x", "y"], [3, 6, 40, 32, 32])
    factors, x = d.sample(64, np.random.default_rng(0))
    assert factors.dtype == np.int64 and factors.shape == (64, 5)
    assert x.dtype == torch.float32 and x.shape == (64, 1, 64, 64)
    assert set(x.unique().tolist()) == {0.0, 1.0}
    assert (x.flatten(1).sum(1) > 0).all()  # every sprite visible
    assert d.images(np.zeros((0, 5), np.int64)).shape == (0, 1, 64, 64)


def test_procedural_is_deterministic_and_batch_independent():
    rng = np.random.default_rng(1)
    f = SPRITES.sample_factors(200, rng)
    x = SPRITES.images(f)
    order = rng.permutation(200)
    assert torch.equal(SPRITES.images(f[order]), x[order])
    assert torch.equal(ProceduralDSprites().images(f[:7]), x[:7])
    singles = torch.cat([SPRITES.images(f[i:i + 1]) for i in range(0, 200, 37)])
    assert torch.equal(singles, x[0:200:37])


class RenderedEveryTime(ProceduralDSprites):
    """The renderer before the cache: every image drawn afresh from its factors, in one batch."""

    def images(self, factors):
        return torch.from_numpy(self.masks(self.check_factors(factors).reshape(-1, 5))).unsqueeze(1).float()


def test_the_cached_renderer_gives_the_metrics_of_rendering_every_image():
    """The metric protocol on cached images scores exactly as on images rendered afresh (same seed, small sizes)."""
    from vaelab.disentangle import all_metrics

    weights = torch.randn(64 * 64, 6, generator=torch.Generator().manual_seed(0))
    represent = lambda x: x.flatten(1) @ weights  # noqa: E731  a fixed linear "encoder"
    sizes, names = {"num_train": 200, "num_test": 100}, ["mig", "sap", "modularity_explicitness"]  # the quick ones
    cached, fresh = (all_metrics(d, represent, 4, sizes, metrics=names) for d in (ProceduralDSprites(),
                                                                               RenderedEveryTime()))
    drop = lambda r: {m: {k: v for k, v in res.items() if k != "seconds"} for m, res in r.items()}  # noqa: E731
    assert drop(cached) == drop(fresh)


def test_position_moves_the_centroid():
    xs = [centroid(sprite(x=i))[0] for i in range(32)]
    ys = [centroid(sprite(y=i))[1] for i in range(32)]
    assert np.all(np.diff(xs) > 0) and np.all(np.diff(ys) > 0)  # x to the right, y down the rows
    assert 9 <= xs[0] <= 10 and 54 <= xs[-1] <= 55  # the centre sweeps pixels 9..54
    assert abs(centroid(sprite(x=0))[1] - centroid(sprite(x=31))[1]) < 1e-9  # x leaves the row alone (float64)


@pytest.mark.parametrize("shape", [SQUARE, ELLIPSE, HEART])
def test_scale_grows_the_area(shape):
    areas = [sprite(shape, scale=s).sum() for s in range(6)]
    assert np.all(np.diff(areas) > 0)


def test_square_area_quadruples_from_half_to_full_scale():
    full, half = sprite(SQUARE, scale=5).sum(), sprite(SQUARE, scale=0).sum()
    assert 14 ** 2 <= full <= 18 ** 2  # a side of about 16 pixels: a quarter of the image
    assert 3.5 <= full / half <= 4.5


def test_shape_changes_the_mask():
    masks = [sprite(s) for s in (SQUARE, ELLIPSE, HEART)]
    for a in range(3):
        for b in range(a + 1, 3):
            assert (masks[a] != masks[b]).sum() > 20


def test_orientation_rotates():
    assert (sprite(HEART, orientation=0) != sprite(HEART, orientation=20)).sum() > 20  # 0 vs pi
    # the heart's point is down at orientation 0: its lobes, most of its area, above its centre; at pi below
    assert centroid(sprite(HEART, orientation=0))[1] + 1.5 < centroid(sprite(HEART, orientation=20))[1]

    def covariance(orientation):
        rows, cols = np.nonzero(sprite(ELLIPSE, orientation=orientation))
        return np.cov(np.stack([cols, -rows]))  # x right, y up

    c0, c45, c90 = covariance(0), covariance(5), covariance(10)  # 0, pi/4, pi/2
    assert c0[0, 0] > 2 * c0[1, 1] and c90[1, 1] > 2 * c90[0, 0]  # long axis along x, then along y
    assert c45[0, 1] > 0.5 * np.sqrt(c45[0, 0] * c45[1, 1])  # counter-clockwise as displayed


def test_sampling_and_the_flat_index():
    d, rng = SPRITES, np.random.default_rng(2)
    f = d.sample_factors(5000, rng)
    assert (f.min(0) == 0).all() and (f.max(0) == np.array(d.factor_sizes) - 1).all()
    for j in range(5):
        fixed = d.sample_with_fixed_factor(100, j, rng)
        assert fixed.shape == (100, 5) and len(np.unique(fixed[:, j])) == 1
        assert all(len(np.unique(fixed[:, k])) > 1 for k in range(5) if k != j)
    assert np.array_equal(d.factors_of(d.index_of(f)), f)
    assert d.index_of([0, 0, 0, 0, 1]) == 1 and d.index_of([0, 0, 0, 1, 0]) == 32  # row-major: y fastest
    assert d.index_of(np.array(d.factor_sizes) - 1) == d.num_images - 1
    assert np.array_equal(d.index_of(d.factors_of(np.arange(1000))), np.arange(1000))
    with pytest.raises(ValueError, match="factor 'scale' is 6"):
        d.index_of([[0, 6, 0, 0, 0]])
    with pytest.raises(ValueError, match=r"expected \[..., 5\]"):
        d.images(np.zeros((2, 4), np.int64))
    with pytest.raises(ValueError, match="out of range"):
        d.factors_of([d.num_images])
    with pytest.raises(ValueError, match="factor=5"):
        d.sample_with_fixed_factor(3, 5, rng)


def test_to_dataset_and_load_dataset():
    d = SPRITES.to_dataset(30, 5, 7, seed=3)
    assert (d.name, d.shape, d.num_classes, d.binary) == ("dsprites-procedural", (1, 64, 64), 0, True)
    assert (len(d.train), len(d.val), len(d.test)) == (30, 5, 7)
    assert d.train.y is None and d.train.x.dtype == torch.float32
    rows = {r.tobytes() for s in (d.train, d.val, d.test) for r in s.x.numpy()}
    assert len(rows) == 42  # distinct grid points (and here distinct images)
    assert torch.equal(SPRITES.to_dataset(30, 5, 7, seed=3).val.x, d.val.x)
    loaded = load_dataset("dsprites-procedural", seed=3, train_size=30, val_size=5, test_size=7)
    assert torch.equal(loaded.test.x, d.test.x)
    with pytest.raises(DataError, match="only 737280"):
        SPRITES.to_dataset(737280, 1, 0, seed=0)
    with pytest.raises(DataError, match="takes only the options train_size, test_size"):
        load_dataset("dsprites-procedural", size=32)
    assert {"dsprites", "dsprites-procedural", "3dshapes"} <= set(DATASETS.names())


# --- the official dSprites layout, on a shrunk grid --------------------------------------------------------

SMALL_DSPRITES = [3, 2, 2, 2, 2]  # 48 images


def _mark(path):  # what the planted pickle would run
    Path(path).write_text("unpickled")


class Planted:
    """Unpickling this object writes a marker file: proof that something was unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return _mark, (self.path,)


@pytest.fixture
def small_dsprites(monkeypatch):
    monkeypatch.setattr(DSprites, "factor_sizes", SMALL_DSPRITES)


def dsprites_arrays(marker: Path, seed=0) -> dict[str, np.ndarray]:
    n = int(np.prod(SMALL_DSPRITES))
    grid = np.stack(np.unravel_index(np.arange(n), SMALL_DSPRITES), 1)
    classes = np.concatenate([np.zeros((n, 1), np.int64), grid], 1)  # colour 0, then the factors
    metadata = np.empty((), dtype=object)
    metadata[()] = {"note": Planted(marker)}
    return {
        "imgs": np.random.default_rng(seed).integers(0, 2, (n, 64, 64), dtype=np.uint8),
        "latents_classes": classes,
        "latents_values": classes.astype(np.float64),
        "metadata": metadata,  # as the official file: a pickled dict
    }


def write_dsprites(folder: Path, arrays: dict[str, np.ndarray], compressed=True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / factors_module.DSPRITES_FILE
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return folder


@pytest.mark.parametrize("compressed", [True, False], ids=["compressed", "stored"])
def test_official_dsprites_layout(tmp_path, small_dsprites, compressed):
    marker = tmp_path / "marker"
    arrays = dsprites_arrays(marker)
    folder = write_dsprites(tmp_path / "d", arrays, compressed)
    d = load_factor_dataset("dsprites", folder, download=False)
    assert isinstance(d, DSprites) and d.num_images == 48
    f = d.sample_factors(40, np.random.default_rng(0))
    x = d.images(f)
    assert x.shape == (40, 1, 64, 64) and x.dtype == torch.float32
    assert torch.equal(x[:, 0], torch.from_numpy(arrays["imgs"][d.index_of(f)]).float())
    assert d._packed == compressed  # the compressed file is kept bit-packed, the stored one memory-mapped
    ds = load_dataset("dsprites", folder, download=False, train_size=20, val_size=4, test_size=6)
    assert (len(ds.train), len(ds.val), len(ds.test), ds.binary) == (20, 4, 6, True)
    assert not marker.exists()  # the pickled metadata was never unpickled


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("imgs"), r"no array 'imgs'"),
        (lambda a: a.pop("latents_classes"), r"no array 'latents_classes'"),
        (lambda a: a.update(imgs=a["imgs"][:, :32]), r"'imgs' is uint8 \[48, 32, 64\], expected uint8 \[48, 64, 64\]"),
        (lambda a: a.update(imgs=a["imgs"].astype(np.float32)), r"'imgs' is float32"),
        (lambda a: a.update(latents_classes=a["latents_classes"][::-1].copy()), r"row 0 has latents_classes .* order"),
        (lambda a: a.update(latents_classes=a["latents_classes"][:, 1:].copy()), r"expected integers \[48, 6\]"),
    ],
    ids=["no-imgs", "no-classes", "image-size", "image-dtype", "order", "classes-shape"],
)
def test_bad_dsprites_file(tmp_path, small_dsprites, change, message):
    arrays = dsprites_arrays(tmp_path / "marker")
    change(arrays)
    folder = write_dsprites(tmp_path / "d", arrays)
    with pytest.raises(DataError, match=message) as err:
        load_factor_dataset("dsprites", folder, download=False)
    assert factors_module.DSPRITES_FILE in str(err.value)


def test_dsprites_pickled_images_are_never_unpickled(tmp_path, small_dsprites):
    marker = tmp_path / "marker"
    arrays = dsprites_arrays(marker)
    arrays["imgs"] = np.array([Planted(marker)] * 48, dtype=object)
    folder = write_dsprites(tmp_path / "d", arrays)
    with pytest.raises(DataError, match="'imgs' holds pickled Python objects"):
        load_factor_dataset("dsprites", folder, download=False)
    assert not marker.exists()


def test_dsprites_non_binary_pixels_and_non_zip(tmp_path, small_dsprites):
    arrays = dsprites_arrays(tmp_path / "marker")
    arrays["imgs"][5, 3, 3] = 255
    d = load_factor_dataset("dsprites", write_dsprites(tmp_path / "d", arrays), download=False)
    with pytest.raises(DataError, match="pixel value 255"):
        d.images(d.factors_of([0]))
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / factors_module.DSPRITES_FILE).write_bytes(b"not a zip file")
    with pytest.raises(DataError, match="not a readable .npz file"):
        load_factor_dataset("dsprites", tmp_path / "e", download=False)


def test_dsprites_missing_offline_says_where(tmp_path, monkeypatch):
    monkeypatch.setenv("VAELAB_DATA", str(tmp_path / "root"))
    with pytest.raises(DataError, match="download=False") as err:
        load_dataset("dsprites", download=False)
    message = str(err.value)
    assert str(tmp_path / "root" / "dsprites") in message
    with pytest.raises(DataError, match="download=False") as err:  # a given data_dir is the only place searched
        load_dataset("dsprites", tmp_path / "given", download=False)
    assert str(tmp_path / "given") in str(err.value) and str(tmp_path / "root") not in str(err.value)
    assert "https://github.com/deepmind/dsprites-dataset/raw/master/" + factors_module.DSPRITES_FILE in message


def test_dsprites_download_is_checked_by_structure(server, tmp_path, monkeypatch, small_dsprites):
    served, url = server
    monkeypatch.setenv("VAELAB_MIRROR_DSPRITES", url)
    arrays = dsprites_arrays(tmp_path / "marker")
    bad = dict(arrays, imgs=arrays["imgs"][:, :32])
    write_dsprites(served, bad)
    with pytest.raises(DataError, match="expected uint8 .*nothing was saved"):
        load_factor_dataset("dsprites", tmp_path / "dest")
    assert not list((tmp_path / "dest").iterdir())
    write_dsprites(served, arrays)
    d = load_factor_dataset("dsprites")  # into the cache
    assert (tmp_path / "xdg-cache" / "vaelab" / "dsprites" / factors_module.DSPRITES_FILE).is_file()
    assert torch.equal(d.images(d.factors_of([7]))[0, 0], torch.from_numpy(arrays["imgs"][7]).float())


# --- 3D Shapes, on a shrunk grid ---------------------------------------------------------------------------

SMALL_SHAPES = [2, 2, 3, 2, 2, 3]  # 144 images


@pytest.fixture
def h5py(monkeypatch):
    module = pytest.importorskip("h5py")
    monkeypatch.setattr(Shapes3D, "factor_sizes", SMALL_SHAPES)
    return module


def shapes_arrays(seed=0) -> dict[str, np.ndarray]:
    n = int(np.prod(SMALL_SHAPES))
    classes = np.stack(np.unravel_index(np.arange(n), SMALL_SHAPES), 1)
    ranges = [(0, 0.9), (0, 0.9), (0, 0.9), (0.75, 1.25), (0, 3), (-30, 30)]
    labels = np.stack([np.linspace(lo, hi, s)[classes[:, j]] for j, ((lo, hi), s) in
                       enumerate(zip(ranges, SMALL_SHAPES))], 1)
    return {"images": np.random.default_rng(seed).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8), "labels": labels}


def write_h5(h5py, folder: Path, arrays: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / "3dshapes.h5", "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    return folder


def test_shapes3d_layout(tmp_path, h5py):
    arrays = shapes_arrays()
    d = load_factor_dataset("3dshapes", write_h5(h5py, tmp_path / "s", arrays), download=False)
    assert d.factor_names == ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"]
    f = np.concatenate([d.sample_factors(30, np.random.default_rng(0)), d.factors_of([5, 5, 0])])  # repeats, unsorted
    x = d.images(f)
    assert x.shape == (33, 3, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    expected = torch.from_numpy(arrays["images"][d.index_of(f)]).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(x, expected)
    ds = load_dataset("3dshapes", tmp_path / "s", download=False, train_size=10, val_size=2, test_size=3)
    assert (len(ds.train), len(ds.val), len(ds.test), ds.shape, ds.binary) == (10, 2, 3, (3, 64, 64), False)
    d.close()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.pop("labels"), r"no dataset 'labels'"),
        (lambda a: a.update(images=a["images"][:, :, :, 0]), r"'images' is uint8 \[144, 64, 64\], expected"),
        (lambda a: a.update(labels=a["labels"][:, ::-1].copy()), r"labels do not follow the row-major order"),
    ],
    ids=["no-labels", "image-shape", "order"],
)
def test_bad_shapes3d_file(tmp_path, h5py, change, message):
    arrays = shapes_arrays()
    change(arrays)
    with pytest.raises(DataError, match=message):
        load_factor_dataset("3dshapes", write_h5(h5py, tmp_path / "s", arrays), download=False)


def test_shapes3d_not_hdf5(tmp_path, h5py):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "3dshapes.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        load_factor_dataset("3dshapes", tmp_path / "s", download=False)


# --- any factor grid in an .npz ----------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [True, False], ids=["compressed", "stored"])
def test_npz_factor_dataset(tmp_path, compressed):
    sizes = [2, 3, 4]
    images = np.random.default_rng(0).integers(0, 256, (24, 5, 6, 3), dtype=np.uint8)
    path = tmp_path / "toy.npz"
    (np.savez_compressed if compressed else np.savez)(
        path, images=images, factor_sizes=np.array(sizes), factor_names=np.array(["a", "bb", "c"]))
    d = load_factor_dataset("npz", path)
    assert isinstance(d, NpzFactorDataset)
    assert (d.name, d.factor_names, d.factor_sizes, d.image_shape) == ("toy", ["a", "bb", "c"], sizes, (3, 5, 6))
    f = np.array([[1, 2, 3], [0, 0, 0], [1, 0, 2]])
    x = d.images(f)
    assert torch.equal(x, torch.from_numpy(images[[23, 0, 14]]).permute(0, 3, 1, 2).float() / 255)
    fixed = d.sample_with_fixed_factor(10, 1, np.random.default_rng(1))
    assert len(np.unique(fixed[:, 1])) == 1
    split = d.to_dataset(20, 2, 2, seed=0)
    assert (len(split.train), split.shape) == (20, (3, 5, 6))


def test_npz_factor_dataset_grey_and_bad_files(tmp_path):
    path = tmp_path / "grey.npz"
    np.savez(path, images=np.zeros((6, 4, 4), np.uint8), factor_sizes=np.array([3, 2]))
    d = NpzFactorDataset(path)
    assert d.factor_names == ["factor0", "factor1"] and d.images([[2, 1]]).shape == (1, 1, 4, 4)
    np.savez(path, images=np.zeros((7, 4, 4), np.uint8), factor_sizes=np.array([3, 2]))
    with pytest.raises(DataError, match=r"'images' is uint8 \[7, 4, 4\], expected .*\[6, H, W\]"):
        NpzFactorDataset(path)
    marker = tmp_path / "marker"
    np.savez(path, images=np.zeros((6, 4, 4), np.uint8), factor_sizes=np.array([3, 2]),
             factor_names=np.array(["a", Planted(marker)], dtype=object))
    with pytest.raises(DataError, match="'factor_names' holds pickled Python objects"):
        NpzFactorDataset(path)
    assert not marker.exists()
    with pytest.raises(DataError, match="needs data_dir: the .npz file"):
        load_factor_dataset("npz")
    with pytest.raises(DataError, match="unknown factor dataset 'shapes'"):
        load_factor_dataset("shapes")


# --- the registry ------------------------------------------------------------------------------------------


def test_factor_datasets_are_found_through_the_registry(monkeypatch, tmp_path):
    assert factors_module.FACTOR_DATASETS.names() == ["3dshapes", "dsprites", "dsprites-procedural", "npz"]
    known = "known: 3dshapes, dsprites, dsprites-procedural, npz$"
    with pytest.raises(DataError, match="^unknown factor dataset 'toy'; " + known):
        load_factor_dataset("toy")
    toys, calls = Registry("factor dataset"), []

    @toys.register("toy")  # a new factor dataset is one registered loader
    def load_toy(data_dir, download):
        calls.append((data_dir, download))
        return SPRITES

    monkeypatch.setattr(factors_module.registry, "FACTOR_DATASETS", toys)
    assert load_factor_dataset("toy", tmp_path, download=False) is SPRITES and calls == [(tmp_path, False)]
    with pytest.raises(DataError, match="^unknown factor dataset 'npz'; known: toy$"):
        load_factor_dataset("npz")

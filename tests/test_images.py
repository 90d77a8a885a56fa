"""Image games: the paper's convolutional models, real image data, grids, `gamedsl sample`, metrics.

The data sets are made here: tiny CIFAR-10 pickles in the real layout and a tiny folder of
PNG files. Networks use a handful of filters so that every run takes a second or two.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import gamedsl
from gamedsl.data import images
from gamedsl.data.images import write_cifar10
from gamedsl.nets import dcgan
from gamedsl.nets.builders import BUILDERS


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch):
    """Caches (decoded folders, the digits classifier) in a per-process folder, no data root set."""
    monkeypatch.setenv("GAMEDSL_CACHE", str(tmp_path_factory.getbasetemp() / "gamedsl-cache"))
    monkeypatch.delenv("GAMEDSL_DATA", raising=False)
    monkeypatch.setattr(images, "_data_root", None)
    yield


def tiny_game(source: str, shape: tuple[int, int, int], batchnorm: bool = False, extra: str = "") -> str:
    c, h, w = shape
    bn = "true" if batchnorm else "false"
    return f"""game tiny "a tiny image game"
data x ~ {source}
latent z ~ normal(8)
network D = dcgan_discriminator([{c}, {h}, {w}] -> 1, filters=4, layers=2, batchnorm={bn}{extra})
network G = dcgan_generator(8 -> [{c}, {h}, {w}], filters=4, layers=2, batchnorm={bn}{extra})
divergence objective = gan
player D controls D maximizes objective(critic=D, real=x, fake=G(z))
player G controls G maximizes -E[objective.g2(D(G(z)))]
solve {{
  optimizer = rmsprop(lr=1e-3)
  batch = 8
  eval_samples = 24
  image_every = 2
  log_every = 1
  threads = 1
}}
"""


@pytest.fixture
def cifar_root(tmp_path):
    root = tmp_path / "data"
    write_cifar10(root / "cifar-10-batches-py", per_batch=6)
    return root


@pytest.fixture
def folder_root(tmp_path):
    root = tmp_path / "data"
    faces = root / "faces"
    (faces / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(40, 48), (48, 40), (36, 36), (50, 44), (44, 50)]):
        where = faces / "sub" if i % 2 else faces
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(where / f"img{i}.png")
    return root


# ---- networks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(layers=4, doubling=True, batchnorm=True),  # dcgan4
        dict(layers=3, doubling=True, batchnorm=False),  # dcgan3_nobn
        dict(layers=4, doubling=False, batchnorm=False, dense=16),  # conv4
        dict(layers=4, doubling=False, batchnorm=False, resnet=True),  # resnet_cf
    ],
)
def test_generator_and_discriminator_shapes(kwargs):
    G = dcgan.generator(8, (3, 32, 32), filters=4, **kwargs)
    D = dcgan.discriminator((3, 32, 32), 1, filters=4, **kwargs)
    x = G(torch.randn(5, 8))
    assert x.shape == (5, 3, 32, 32) and x.abs().max() <= 1
    assert D(x).shape == (5, 1)
    convs = [m for m in D.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert len(convs) == kwargs["layers"]
    expected = [4 * 2**i for i in range(kwargs["layers"])] if kwargs["doubling"] else [4] * kwargs["layers"]
    assert [c.out_channels for c in convs] == expected
    assert dcgan.has_batchnorm(D) == kwargs["batchnorm"]
    if kwargs.get("dense"):
        assert any(isinstance(m, torch.nn.Linear) and m.out_features == 16 for m in D.modules())
    if kwargs.get("resnet"):
        assert sum(isinstance(m, dcgan.Residual) for m in D.modules()) == kwargs["layers"]


def test_discriminator_has_no_batchnorm_on_its_first_convolution():
    D = dcgan.discriminator((3, 32, 32), 1, filters=4, layers=4, batchnorm=True)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules()) == 3


def test_running_stats_frozen_keeps_buffers():
    G = dcgan.generator(8, (1, 16, 16), filters=4, layers=2, batchnorm=True)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    with dcgan.running_stats_frozen(G):
        G(torch.randn(16, 8))
    after = G.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    G(torch.randn(16, 8))  # outside: training updates the running averages again
    assert not all(torch.equal(before[k], G.state_dict()[k]) for k in before)


def test_check_reports_a_shape_mismatch_at_the_call(cli, tmp_path):
    text = tiny_game("digits(size=16)", (1, 16, 16)).replace("dcgan_generator(8 -> [1, 16, 16]", "dcgan_generator(8 -> [3, 16, 16]")
    path = tmp_path / "bad.game"
    path.write_text(text)
    result = cli("check", path)
    assert result.code == 3
    assert f"{path}:7:" in result.stderr and "the critic 'D' takes shape [1, 16, 16], but 'fake' is shape [3, 16, 16]" in result.stderr


def test_check_reports_layers_that_do_not_fit_the_image(cli, tmp_path):
    path = tmp_path / "bad.game"
    path.write_text(tiny_game("digits(size=12)", (1, 12, 12)))
    assert cli("check", path).code == 0  # 12 is divisible by 2^2
    path.write_text(tiny_game("digits(size=10)", (1, 10, 10)))
    result = cli("check", path)
    assert result.code == 3 and "with 2 stride-2 layers needs image sides divisible by 2^2 = 4, but the image is 10x10" in result.stderr


@pytest.mark.parametrize(
    "network, message",
    [
        ("dcgan_generator([1, 8, 8] -> [1, 8, 8])", "the input (the latent code) of dcgan_generator must be a size"),
        ("dcgan_generator(8 -> 64)", "the output of dcgan_generator is an image, written [channels, height, width]"),
        ("dcgan_discriminator([1, 8, 8] -> 1, layers=9)", "expected a whole number of at most 8, got 9"),
        ("mlp([1, 8, 8] -> 1)", "hint: images are generated by dcgan_generator"),
    ],
)
def test_builder_argument_errors(network, message):
    with pytest.raises(gamedsl.errors.GameError) as info:
        gamedsl.loads(f"game t\nnetwork N = {network}\nparam p = 0\nplayer A controls N maximizes p\nplayer B controls p maximizes p\n")
    assert message in info.value.render()


def test_every_paper_architecture_can_be_written():
    for args in (
        "filters=64, layers=3, doubling=false, batchnorm=false, dense=512",  # conv3
        "filters=64, layers=4, doubling=false, batchnorm=false, dense=512",  # conv4
        "filters=64, layers=3",  # dcgan3
        "filters=64, layers=4",  # dcgan4
        "filters=64, layers=4, batchnorm=false",  # dcgan4_nobn
        "filters=64, layers=4, batchnorm=false, doubling=false",  # dcgan4_nobn_cf
        "filters=64, layers=4, batchnorm=false, resnet=true",  # resnet
        "filters=64, layers=4, batchnorm=false, resnet=true, doubling=false",  # resnet_cf
    ):
        game = gamedsl.loads(
            f"game t\ndata x ~ cifar10()\nlatent z ~ normal(256)\n"
            f"network D = dcgan_discriminator([3, 32, 32] -> 1, {args})\nnetwork G = dcgan_generator(256 -> [3, 32, 32], {args})\n"
            "player D controls D maximizes gan(critic=D, real=x, fake=G(z))\nplayer G controls G maximizes -E[gan.g2(D(G(z)))]\n"
        )
        assert all(game.parameter_count(p) > 0 for p in game.players)
    assert {"dcgan_generator", "dcgan_discriminator"} <= set(BUILDERS)


def test_the_catalog_checks_without_data_and_switches_divergence(cli):
    result = cli("check", "games/cifar_dcgan.game", "games/cifar_dcgan_bn.game", "games/celeba_resnet.game", "games/digits_dcgan.game")
    assert result.code == 0, result.stderr
    game = gamedsl.load("games/cifar_dcgan.game", {"objective": "kl"})
    assert game.aliases["objective"] == "kl"


# ---- data --------------------------------------------------------------------------------------------


def test_cifar_loader_reads_the_real_layout(cifar_root):
    x = images.load_cifar10(str(cifar_root / "cifar-10-batches-py"), "train")
    assert x.shape == (30, 3, 32, 32) and x.dtype == torch.uint8
    raw = pickle.loads((cifar_root / "cifar-10-batches-py" / "data_batch_1").read_bytes(), encoding="bytes")
    assert torch.equal(x[0], torch.from_numpy(raw[b"data"][0].reshape(3, 32, 32)))
    assert images.load_cifar10(str(cifar_root / "cifar-10-batches-py"), "test").shape == (6, 3, 32, 32)


def test_image_sampler_scales_to_minus_one_one_and_follows_its_generator():
    sampler = images.ImageSampler((1, 16, 16), lambda: images.load_digits(16))
    a = sampler.sample(32, torch.Generator().manual_seed(3), torch.float32)
    b = sampler.sample(32, torch.Generator().manual_seed(3), torch.float32)
    assert torch.equal(a, b) and a.shape == (32, 1, 16, 16)
    assert a.min() >= -1 and a.max() <= 1 and a.min() == -1 and a.max() > 0.9


def test_image_folder_crops_resizes_and_caches(folder_root):
    x = images.load_image_folder(str(folder_root / "faces"), 16, 32, 3)
    assert x.shape == (5, 3, 16, 16) and x.dtype == torch.uint8
    cached = list((images.cache_root() / "images").glob("faces-16-*.npy"))
    assert len(cached) == 1
    images._loaded.clear()
    assert torch.equal(images.load_image_folder(str(folder_root / "faces"), 16, 32, 3), x)  # from the disk cache
    grey = images.load_image_folder(str(folder_root / "faces"), 8, None, 1)
    assert grey.shape == (5, 1, 8, 8)


@pytest.mark.parametrize("solver", ["simga", "altga", "consensus"])
def test_solve_cifar_writes_grids_metrics_and_params(cli, tmp_path, cifar_root, solver):
    game = tmp_path / "cifar.game"
    game.write_text(tiny_game("cifar10()", (3, 32, 32)))
    out = tmp_path / "run"
    result = cli("solve", game, "--solver", solver, "--steps", "4", "--data-dir", cifar_root, "--out", out, "-q")
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in (out / "grids").glob("*.png")) == [f"step_000000{i}.png" for i in (0, 2, 4)]
    grid = np.asarray(Image.open(out / "grids" / "step_0000004.png"))
    assert grid.ndim == 3 and grid.shape[2] == 3 and grid.shape[0] > 8 * 32
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 4 and metrics["status"] == "finished"
    assert metrics["images"]["inception"]["available"] is False
    assert "never downloads" in metrics["images"]["inception"]["reason"] or "torch-fidelity" in metrics["images"]["inception"]["reason"]
    assert "no Inception score or FID" in result.stdout
    samples = np.load(out / "samples.npy")
    assert samples.shape == (24, 3, 32, 32) and samples.dtype == np.uint8
    assert set(torch.load(out / "params" / "G.pt", weights_only=True)) and (out / "checkpoint.pt").exists()
    assert json.loads((out / "config.json").read_text())["data_root"] == str(cifar_root)


def test_resume_finds_the_data_where_the_run_found_them(cli, tmp_path, cifar_root):
    game = tmp_path / "cifar.game"
    game.write_text(tiny_game("cifar10()", (3, 32, 32)))
    out = tmp_path / "run"
    assert cli("solve", game, "--steps", "2", "--data-dir", cifar_root, "--out", out, "-q").code == 0
    images.set_data_root(None)  # as in a new process without --data-dir
    images._loaded.clear()
    result = cli("solve", "--resume", out, "--steps", "4", "-q")
    assert result.code == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["steps"] == 4 and (out / "grids" / "step_0000004.png").exists()


@pytest.mark.parametrize("solver", ["simga", "altga", "consensus"])
def test_solve_image_folder(cli, tmp_path, folder_root, solver):
    game = tmp_path / "faces.game"
    game.write_text(tiny_game('image_folder("faces", size=16, crop=32)', (3, 16, 16)))
    out = tmp_path / "run"
    result = cli("solve", game, "--solver", solver, "--steps", "2", "--data-dir", folder_root, "--out", out, "-q")
    assert result.code == 0, result.stderr
    assert (out / "grids" / "step_0000002.png").exists() and (out / "metrics.json").exists()


def test_tensorboard_gets_the_sample_grid_and_digit_scores(cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    game = tmp_path / "digits.game"
    game.write_text(tiny_game("digits(size=8)", (1, 8, 8)))
    out = tmp_path / "run"
    assert cli("solve", game, "--steps", "4", "--solver", "consensus", "--out", out, "-q").code == 0
    events = EventAccumulator(str(out), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    assert len(events.Images("samples/grid")) == 3
    assert [e.step for e in events.Scalars("images/classifier_score")] == [0, 2, 4]
    metrics = json.loads((out / "metrics.json").read_text())["images"]
    assert {"digits", "digits_untrained", "digits_reference"} <= set(metrics)
    assert metrics["digits_reference"]["real_classifier_score"] > 8


# ---- missing and malformed data: exit code 4, where, what, how ---------------------------------------


def test_missing_cifar_says_where_what_and_how(cli, tmp_path):
    game = tmp_path / "cifar.game"
    game.write_text(tiny_game("cifar10()", (3, 32, 32)))
    out = tmp_path / "run"
    result = cli("solve", game, "--steps", "2", "--data-dir", tmp_path / "nowhere", "--out", out, "-q")
    assert result.code == 4
    err = result.stderr
    assert f"{game}:2:10: error: CIFAR-10 not found: {tmp_path / 'nowhere' / 'cifar-10-batches-py'} is not a folder" in err
    assert "data_batch_1 ... data_batch_5 and test_batch" in err and "uint8 array (N, 3072)" in err
    assert "https://www.cs.toronto.edu/~kriz/cifar.html" in err and "never downloads" in err
    assert "Traceback" not in err and not out.exists()


def test_missing_cifar_default_location_uses_the_environment(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("GAMEDSL_DATA", str(tmp_path / "env-root"))
    game = tmp_path / "cifar.game"
    game.write_text(tiny_game("cifar10()", (3, 32, 32)))
    result = cli("solve", game, "--steps", "1", "--out", tmp_path / "run", "-q")
    assert result.code == 4 and str(tmp_path / "env-root" / "cifar-10-batches-py") in result.stderr


def test_incomplete_cifar_names_the_missing_files(cli, tmp_path, cifar_root):
    (cifar_root / "cifar-10-batches-py" / "data_batch_3").unlink()
    game = tmp_path / "cifar.game"
    game.write_text(tiny_game("cifar10()", (3, 32, 32)))
    result = cli("solve", game, "--steps", "1", "--data-dir", cifar_root, "--out", tmp_path / "run", "-q")
    assert result.code == 4 and "has no data_batch_3" in result.stderr


@pytest.mark.parametrize(
    "corrupt, message",
    [("truncate", "is not a CIFAR-10 batch: it does not unpickle"), ("shape", "not uint8 (N, 3072)")],
)
def test_malformed_cifar(cli, tmp_path, corrupt, message):
    root = tmp_path / "data"
    write_cifar10(root / "cifar-10-batches-py", per_batch=4, corrupt=corrupt)
    game = tmp_path / "cifar.game"
    game.write_text(tiny_game("cifar10()", (3, 32, 32)))
    result = cli("solve", game, "--steps", "1", "--data-dir", root, "--out", tmp_path / "run", "-q")
    assert result.code == 4, result.stderr
    assert message in result.stderr and "data_batch_1" in result.stderr and "Traceback" not in result.stderr


def test_a_data_file_cannot_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    folder = write_cifar10(tmp_path / "cifar-10-batches-py", per_batch=2)
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(gamedsl.errors.DataError, match="refusing to load .*print"):
        images.load_cifar10(str(folder), "train")


def test_malformed_and_empty_image_folders(cli, tmp_path, folder_root):
    (folder_root / "faces" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    game = tmp_path / "faces.game"
    game.write_text(tiny_game('image_folder("faces", size=16)', (3, 16, 16)))
    result = cli("solve", game, "--steps", "1", "--data-dir", folder_root, "--out", tmp_path / "run", "-q")
    assert result.code == 4 and "cannot read the image" in result.stderr and "broken.png" in result.stderr
    (folder_root / "empty").mkdir()
    game.write_text(tiny_game('image_folder("empty", size=16)', (3, 16, 16)))
    result = cli("solve", game, "--steps", "1", "--data-dir", folder_root, "--out", tmp_path / "run2", "-q")
    assert result.code == 4 and "no images in" in result.stderr


def test_crop_smaller_than_the_size_is_a_check_error():
    with pytest.raises(gamedsl.errors.GameError, match="a crop of 32 pixels is smaller than the image size 64"):
        gamedsl.loads(tiny_game('image_folder("f", size=64, crop=32)', (3, 64, 64)))


# ---- gamedsl sample ------------------------------------------------------------------------------


def test_sample_writes_png_and_npy_from_a_fixed_z(cli, tmp_path, cifar_root):
    game = tmp_path / "cifar.game"
    game.write_text(tiny_game("cifar10()", (3, 32, 32)))
    out = tmp_path / "run"
    assert cli("solve", game, "--steps", "2", "--data-dir", cifar_root, "--out", out, "-q").code == 0
    images._loaded.clear()
    (cifar_root / "cifar-10-batches-py" / "data_batch_1").unlink()  # sampling needs no data
    result = cli("sample", out, "-n", "64", "-o", tmp_path / "grid.png")
    assert result.code == 0, result.stderr
    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    assert np.array_equal(grid, np.asarray(Image.open(out / "grids" / "step_0000002.png")))  # the run's own last grid
    assert cli("sample", out, "-n", "10", "-o", tmp_path / "s.npy").code == 0
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (10, 3, 32, 32) and samples.dtype == np.uint8
    assert cli("sample", out, "-n", "10", "-o", tmp_path / "s2.npy").code == 0
    assert np.array_equal(samples, np.load(tmp_path / "s2.npy"))
    assert cli("sample", out, "-o", tmp_path / "x.jpg").code == 2


def test_sample_png_of_a_2d_game_is_a_usage_error(cli, tmp_path):
    out = tmp_path / "mog"
    assert cli("solve", "games/mog.game", "--steps", "2", "--batch", "16", "--out", out, "-q").code == 0
    result = cli("sample", out, "-o", tmp_path / "g.png")
    assert result.code == 2 and "a PNG grid needs an image game" in result.stderr
    assert cli("sample", out, "-n", "5", "-o", tmp_path / "g.npy").code == 0
    assert np.load(tmp_path / "g.npy").shape == (5, 2)


# ---- batch norm -----------------------------------------------------------------------------------


def test_batchnorm_game_trains_saves_statistics_and_has_a_spectrum(cli, tmp_path):
    game = tmp_path / "bn.game"
    game.write_text(tiny_game("digits(size=8)", (1, 8, 8), batchnorm=True).replace("filters=4", "filters=2"))
    out = tmp_path / "run"
    result = cli("solve", game, "--solver", "altga", "--steps", "3", "--out", out, "-q")
    assert result.code == 0, result.stderr
    saved = torch.load(out / "checkpoint.pt", weights_only=True)["buffers"]
    assert any(k.endswith("running_mean") for k in saved)
    params = torch.load(out / "params" / "G.pt", weights_only=True)
    assert torch.equal(params["2.running_mean"], saved["networks.G.2.running_mean"])  # drawing pictures left them alone
    result = cli("spectrum", out, "--at", "checkpoint", "--batches", "1", "--out", tmp_path / "spec")
    assert result.code == 0, result.stderr
    assert (tmp_path / "spec" / "spectrum.npz").exists()
    after = torch.load(out / "checkpoint.pt", weights_only=True)["buffers"]
    assert all(torch.equal(saved[k], after[k]) for k in saved)


def test_debias_refuses_batchnorm(cli, tmp_path):
    game = tmp_path / "bn.game"
    game.write_text(tiny_game("digits(size=8)", (1, 8, 8), batchnorm=True))
    result = cli("solve", game, "--set", "solver=consensus(debias=true)", "--steps", "1", "--out", tmp_path / "run", "-q")
    assert result.code == 2 and "batch norm" in result.stderr and "debias=false" in result.stderr


# ---- metrics ------------------------------------------------------------------------------------------


def test_digits_classifier_scores_real_digits_far_above_noise():
    from gamedsl.metrics.images import classifier_path, digits_reference, digits_scores

    reference = digits_reference()
    assert reference["classifier_test_accuracy"] > 0.95 and classifier_path().exists()
    real = images.to_float(images.load_digits(16))
    noise = torch.rand(1000, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    scored_real, scored_noise = digits_scores(real), digits_scores(noise)
    assert scored_real["classifier_score"] > 8 and scored_noise["classifier_score"] < 3
    assert scored_real["frechet_distance"] < 1e-6 * scored_noise["frechet_distance"]  # the real digits themselves
    half = digits_scores(real[::2])["frechet_distance"]
    assert 0 < half < 0.05 * scored_noise["frechet_distance"]
    assert digits_reference(16)["real_classifier_score"] == pytest.approx(scored_real["classifier_score"])


def test_inception_metrics_never_download(monkeypatch):
    from gamedsl.metrics import images as metrics

    monkeypatch.setenv("GAMEDSL_INCEPTION_WEIGHTS", "/nonexistent/weights.pth")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: "/nonexistent")
    fake = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    result = metrics.inception_scores(fake, fake)
    assert result["available"] is False
    assert "pip install 'gamedsl[images]'" in result["reason"] or "never downloads" in result["reason"]

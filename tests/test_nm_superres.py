"""NM super-resolution task: counts kept, geometry, system response, methods and checkpoints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.image import Image, affine_from_spacing
from medrestore.core.random import make_generator
from medrestore.inference import HALF_TURN, IDENTITY
from medrestore.data.nm_phantoms import hot_spot_phantom
from medrestore.io import read_image, write_image
from medrestore.metrics import evaluate
from medrestore.models import create_model
from medrestore.models.count_restoration import DCT_MLEM, MLEM, CountRestoration, response_iterations
from medrestore.physics.degradations import GammaCamera
from medrestore.physics.noise import super_poisson_counts
from medrestore.solvers.dct_denoise import anscombe_sigma, count_noise_sigma, denoise_counts
from medrestore.tasks.superres import (
    REFINEMENT_DOMAIN,
    PlanarAcquisition,
    RefinementDomain,
    SuperResolutionRequest,
    SystemResponse,
    guard_refinement,
    keep_total_counts,
    load_super_resolution,
    superres_file,
    superres_image,
    system_response,
)

torch.set_num_threads(1)


def test_keep_total_counts_clips_and_rescales() -> None:
    restored = torch.tensor([[-2.0, 1.0], [3.0, 0.0]])
    kept = keep_total_counts(restored, 8.0)
    assert kept.tolist() == [[0.0, 2.0], [6.0, 0.0]] and kept.dtype == torch.float64
    assert keep_total_counts(-torch.ones(2, 2), 8.0).tolist() == [[2.0, 2.0], [2.0, 2.0]]
    assert float(keep_total_counts(restored, 0.0).abs().sum()) == 0.0


def test_bicubic_is_count_preserving_and_keeps_world_positions() -> None:
    counts = torch.poisson(torch.full((8, 6, 2), 30.0), generator=make_generator(0))  # two frames
    affine = np.array([[0.0, -4.0, 0.0, 10.0], [4.0, 0.0, 0.0, -20.0], [0.0, 0.0, 2.0, 5.0], [0, 0, 0, 1.0]])
    image = Image(counts, affine, 2, "nm", {})
    restored = superres_image(image, load_super_resolution("bicubic", 4))
    assert restored.shape == (32, 24, 2) and restored.spacing == (1.0, 1.0) and restored.modality == "nm"
    for frame in range(2):
        assert float(restored.data[..., frame].double().sum()) == pytest.approx(float(counts[..., frame].sum()), rel=1e-6)
    # the centre of fine pixels (4i + 1.5, 4j + 1.5) is the centre of coarse pixel (i, j)
    coarse = affine @ np.array([3.0, 2.0, 0.0, 1.0])
    fine = restored.affine @ np.array([4 * 3 + 1.5, 4 * 2 + 1.5, 0.0, 1.0])
    np.testing.assert_allclose(fine, coarse, atol=1e-12)


def test_multi_frame_volume_is_a_stack_of_planar_frames() -> None:
    counts = torch.poisson(torch.full((3, 8, 10), 20.0), generator=make_generator(1))
    image = Image(counts, affine_from_spacing((5.0, 4.0, 4.0)), 3, "nm", {})
    restored = superres_image(image, load_super_resolution("mlem", 4, iterations=3), SystemResponse(PlanarAcquisition(), 1.0, "test"))
    assert restored.shape == (3, 32, 40) and restored.spacing == (5.0, 1.0, 1.0)
    totals = restored.data.double().sum(dim=(1, 2))
    assert torch.allclose(totals, counts.double().sum(dim=(1, 2)), rtol=1e-6)
    with pytest.raises(InputError, match="non-negative"):
        superres_image(Image.from_array(-np.ones((8, 8), np.float32)), load_super_resolution("bicubic", 2))


def test_system_response_from_record_spacing_or_default(tmp_path: Path) -> None:
    image = Image.from_array(np.ones((16, 16), np.float32), spacing=(8.8, 8.8))
    from_spacing = system_response(image, 4)
    assert from_spacing.pixel_size_mm == pytest.approx(2.2) and from_spacing.acquisition.collimator == "LEGP"
    assert from_spacing.fwhm_pixels == pytest.approx(PlanarAcquisition().resolution_mm / 2.2)
    write_image(image, tmp_path / "low.npy")
    assert system_response(read_image(tmp_path / "low.npy"), 4).pixel_size_mm == 1.0  # no stored spacing
    record = {"degradation": {"kind": "gamma-camera", "scale": 4, "collimator": "LEHR", "distance_mm": 50.0,
                              "isotope": "I-123", "pixel_size_mm": 0.67, "scatter_fraction": 0.0}}  # fmt: skip
    (tmp_path / "low.npy.json").write_text(json.dumps(record))
    recorded = system_response(image, 4, tmp_path / "low.npy")
    assert recorded.pixel_size_mm == 0.67 and recorded.acquisition == PlanarAcquisition("LEHR", "I-123", 50.0)
    assert "degrade record" in recorded.source
    with pytest.raises(ConfigError, match="--scale 4"):
        system_response(image, 2, tmp_path / "low.npy")


def test_mlem_beats_bicubic_on_a_default_acquisition() -> None:
    original = torch.from_numpy(hot_spot_phantom(128, make_generator(3))) * 200.0
    coarse = GammaCamera(pixel_size_mm=1.5)(original, make_generator(4))
    fwhm = SystemResponse(PlanarAcquisition(), 1.5, "test").fwhm_pixels
    scores = {}
    for method in ("bicubic", "mlem", "dct-mlem"):
        restored = load_super_resolution(method, 4)(coarse, fwhm)
        assert float(restored.sum()) == pytest.approx(float(coarse.sum()), rel=1e-9)
        scores[method] = evaluate(restored, original)["psnr"]
    assert scores["mlem"] > scores["bicubic"] + 1.0
    assert scores["dct-mlem"] > scores["mlem"] + 0.3


def test_denoise_counts_removes_poisson_noise_without_losing_counts() -> None:
    """Anscombe → DCT → exact unbiased inverse: on a flat field the noise falls far below Poisson's √λ
    and the mean stays at λ, also at 3 counts a pixel where the algebraic inverse loses ~10 %."""
    for level in (3.0, 30.0, 300.0):
        counts = torch.poisson(torch.full((64, 64), level, dtype=torch.float64), generator=make_generator(int(level)))
        denoised = denoise_counts(counts)
        assert denoised.shape == counts.shape and denoised.dtype == torch.float64 and float(denoised.min()) >= 0
        assert float(denoised.mean()) == pytest.approx(level, rel=0.03)
        assert float(denoised.std()) < 0.25 * level**0.5
    edge = torch.zeros(64, 64, dtype=torch.float64)
    edge[:, 32:] = 400.0
    counts = torch.poisson(edge, generator=make_generator(5))
    denoised = denoise_counts(counts)
    assert float((denoised - edge)[:, 34:].std()) < 0.3 * 20.0  # the bright half smoothed...
    assert float(denoised[:, 30].mean()) < 20.0 and float(denoised[:, 33].mean()) > 380.0  # ...its edge kept
    assert denoise_counts(counts.to(torch.float32)).dtype == torch.float32


def test_noise_level_after_anscombe_is_measured_on_the_counts() -> None:
    """Patch PCA of A(k): σ ≈ 1 for Poisson counts, ≈ √F for variance F·mean, also under a blurred acquisition's
    structure; none on too few bright pixels; the level used is never below Poisson's and needs a blurred image."""
    flat = torch.full((96, 96), 500.0, dtype=torch.float64)
    assert anscombe_sigma(torch.poisson(flat, generator=make_generator(0))) == pytest.approx(1.0, abs=0.05)
    assert anscombe_sigma(super_poisson_counts(flat, 1.45, make_generator(1))) == pytest.approx(1.45**0.5, abs=0.06)
    activity = torch.from_numpy(hot_spot_phantom(384, make_generator(3))).to(torch.float64) * 400.0 + 40.0
    camera = GammaCamera(pixel_size_mm=1.0)  # LEGP at 10 cm: 8.9 mm = 2.2 coarse pixels
    expected = camera.expected_counts(activity)
    assert anscombe_sigma(torch.poisson(expected, generator=make_generator(4))) == pytest.approx(1.0, abs=0.06)
    assert anscombe_sigma(super_poisson_counts(expected, 2.0, make_generator(5))) == pytest.approx(2.0**0.5, abs=0.08)
    assert anscombe_sigma(torch.poisson(torch.full((8, 8), 500.0), generator=make_generator(6))) is None  # 25 patches
    assert anscombe_sigma(torch.poisson(torch.full((96, 96), 5.0), generator=make_generator(7))) is None  # < 20 counts
    noisy = super_poisson_counts(flat, 2.0, make_generator(8))
    used, estimate = count_noise_sigma(noisy, 2.2)
    assert used == estimate == anscombe_sigma(noisy) and used == pytest.approx(2.0**0.5, abs=0.06)
    assert count_noise_sigma(noisy, 1.0) == (1.0, None) and count_noise_sigma(noisy, None) == (1.0, None)
    assert count_noise_sigma(torch.poisson(flat * 0.2, generator=make_generator(9)), 2.2)[0] == 1.0  # estimate ≈ 0.98
    with pytest.raises(InputError, match="2-D"):
        anscombe_sigma(flat[None])
    counts = torch.poisson(flat[:64, :64], generator=make_generator(10))
    assert torch.equal(denoise_counts(counts, sigma=1.0), denoise_counts(counts))
    assert float(denoise_counts(counts, sigma=3.0).std()) < float(denoise_counts(counts).std())
    with pytest.raises(InputError, match="sigma"):
        denoise_counts(counts, sigma=0.0)


def test_network_methods_load_checkpoints_and_check_their_scale(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = create_model("srresnet", {"width": 4, "blocks": 1, "scale": 4})
    payload = {
        "model": {"name": "srresnet", "options": {"width": 4, "blocks": 1, "scale": 4}, "state_dict": network.state_dict()},
        "normalisation": {"kind": "minmax-image"}, "inference": {"window": None},
    }  # fmt: skip
    torch.save(payload, tmp_path / "net.pt")
    method = load_super_resolution("srresnet", 4, str(tmp_path / "net.pt"))
    counts = torch.poisson(torch.full((12, 10), 50.0), generator=make_generator(5))
    restored = method(counts)
    assert restored.shape == (48, 40) and float(restored.sum()) == pytest.approx(float(counts.sum()), rel=1e-9)
    with pytest.raises(ConfigError, match="needs ×2"):
        load_super_resolution("srresnet", 2, str(tmp_path / "net.pt"))
    with pytest.raises(ConfigError, match="unknown super-resolution method"):
        load_super_resolution("nearest", 4)
    with pytest.raises(ConfigError, match="not bicubic"):
        load_super_resolution("bicubic", 4, str(tmp_path / "net.pt"))
    with pytest.raises(ConfigError, match="needs the system response"):
        load_super_resolution("mlem", 4)(counts)


def test_refining_methods_take_only_networks_trained_on_their_reconstruction(tmp_path: Path) -> None:
    """``dct-mlem-vdsr`` and ``dct-mlem-resunet`` feed their network the ML-EM reconstruction of denoised counts,
    ``mlem-vdsr`` that of raw counts: a checkpoint whose training configuration names the other input is refused."""
    network = create_model("vdsr", {"spatial_ndim": 2, "channels": 1, "scale": 1, "depth": 3, "width": 4})
    for trained in ("dct-mlem", "mlem"):
        payload = {
            "model": {"name": "vdsr", "options": {"spatial_ndim": 2, "channels": 1, "scale": 1, "depth": 3, "width": 4},
                      "state_dict": network.state_dict()},
            "normalisation": {"kind": "minmax-image"}, "inference": {"window": None},
            "config": f"data:\n  nm:\n    input: {trained}\n",
        }  # fmt: skip
        torch.save(payload, tmp_path / f"{trained}.pt")
    counts = torch.poisson(torch.full((12, 10), 50.0), generator=make_generator(5))
    method = load_super_resolution("dct-mlem-vdsr", 4, str(tmp_path / "dct-mlem.pt"))
    assert method.iterations == 40 and method.post_filter_fwhm == 0.0 and method.needs_response
    restored = method(counts, 3.0)
    assert restored.shape == (48, 40) and float(restored.sum()) == pytest.approx(float(counts.sum()), rel=1e-9)
    for refiner in ("dct-mlem-vdsr", "dct-mlem-resunet"):
        with pytest.raises(ConfigError, match="trained on mlem inputs"):
            load_super_resolution(refiner, 4, str(tmp_path / "mlem.pt"))
    # the default self-ensemble: the network on the four quarter turns of its input, turned back and averaged
    assert method.views == HALF_TURN
    single = load_super_resolution("dct-mlem-vdsr", 4, str(tmp_path / "dct-mlem.pt"), ensemble=1)
    assert single.views == IDENTITY
    fine = dataclasses.replace(method, predictor=None).density(counts, 3.0).to(torch.float32)
    turned = [torch.rot90(single.predictor.predict(torch.rot90(fine, k)), -k) for k in (0, 2)]
    assert torch.allclose(method.density(counts, 3.0), sum(turned) / 2, atol=1e-6)
    assert not torch.allclose(single.density(counts, 3.0), sum(turned) / 2, atol=1e-4)  # an untrained net is not equivariant
    with pytest.raises(ConfigError, match="1, 2, 4, 8 views, not 3"):
        load_super_resolution("dct-mlem-vdsr", 4, str(tmp_path / "dct-mlem.pt"), ensemble=3)
    with pytest.raises(ConfigError, match="--ensemble applies to the network methods, not dct-mlem"):
        load_super_resolution("dct-mlem", 4, ensemble=4)
    with pytest.raises(ConfigError, match="trained on dct-mlem inputs"):
        load_super_resolution("mlem-vdsr", 4, str(tmp_path / "dct-mlem.pt"))


def _tiny_refiner(path: Path) -> Path:
    network = create_model("vdsr", {"spatial_ndim": 2, "channels": 1, "scale": 1, "depth": 3, "width": 4})
    payload = {
        "model": {"name": "vdsr", "options": {"spatial_ndim": 2, "channels": 1, "scale": 1, "depth": 3, "width": 4},
                  "state_dict": network.state_dict()},
        "normalisation": {"kind": "minmax-image"}, "inference": {"window": None},
        "config": "data:\n  nm:\n    input: dct-mlem\n",
    }  # fmt: skip
    torch.save(payload, path)
    return path


def test_refinement_guard_measures_pixel_size_count_level_and_matrix() -> None:
    domain = RefinementDomain()
    assert domain == REFINEMENT_DOMAIN and domain.pixel_size_mm == (0.6, 5.0) and domain.peak_counts == (10.0, 1000.0)
    frames = torch.arange(1, 401, dtype=torch.float64).reshape(1, 20, 20)  # q99.5 = 398.005 counts per coarse pixel
    assert domain.count_level(frames, 4) == pytest.approx(398.005 / 16)
    assert domain.outside(frames, 4, 2.4) == []
    assert domain.outside(frames, 4, 0.5) == ["fine pixel size 0.5 mm outside the 0.6-5 mm learnt"]
    assert "count level 0.2488 counts" in domain.outside(frames / 100, 4, 2.4)[0]
    assert "count level" in domain.outside(frames * 100, 4, 2.4)[0]
    assert domain.outside(frames[:, :10], 4, 2.4) == ["matrix (10, 20) smaller than the 12-pixel side learnt"]
    trained = [PlanarAcquisition("LEGP", "Tc-99m", distance).resolution_mm for distance in (80.0, 100.0, 120.0)]
    assert domain.resolution_mm == pytest.approx((trained[0], trained[2])) and all(domain.outside(frames, 4, 2.4, r) == [] for r in trained)
    for collimator in ("INTR", "LEHR"):  # 3.8 and 7.24 mm at 10 cm: a blur they did not learn to undo
        resolution = PlanarAcquisition(collimator).resolution_mm
        assert domain.outside(frames, 4, 2.4, resolution) == [
            f"system response {resolution:.3g} mm outside the 7.78-10 mm learnt (LEGP at 80-120 mm)"]


def test_refining_method_falls_back_to_its_reconstruction_outside_its_domain(tmp_path: Path) -> None:
    """Outside the domain the file gets exactly ``dct-mlem``'s output and the record says why; inside, the network's."""
    checkpoint = _tiny_refiner(tmp_path / "refiner.pt")
    counts = np.random.default_rng(2).poisson(400.0, size=(16, 16)).astype(np.float32)
    source = write_image(Image(counts, affine_from_spacing((9.6, 9.6)), 2, "nm", {}), tmp_path / "scan.nii.gz")
    before = source.read_bytes()
    records, outputs = {}, {}
    for name, request in {
        "inside": SuperResolutionRequest(method="dct-mlem-vdsr", model=str(checkpoint)),
        "small pixels": SuperResolutionRequest(method="dct-mlem-vdsr", model=str(checkpoint), pixel_size_mm=0.3),
        "classical": SuperResolutionRequest(method="dct-mlem", pixel_size_mm=0.3),
    }.items():  # fmt: skip
        output = tmp_path / f"{name.replace(' ', '-')}.nii.gz"
        records[name] = superres_file(source, output, request)
        outputs[name] = read_image(output).data
    assert source.read_bytes() == before
    inside, outside = records["inside"]["refinement_guard"], records["small pixels"]["refinement_guard"]
    assert inside["networks_applied"] and inside["reasons"] == [] and records["inside"]["method"] == "dct-mlem-vdsr"
    assert inside["pixel_size_mm"] == pytest.approx(2.4) and inside["count_level"] == pytest.approx(
        REFINEMENT_DOMAIN.count_level(torch.from_numpy(counts)[None], 4))
    assert not outside["networks_applied"] and outside["fallback"] == "dct-mlem"
    assert outside["reasons"] == ["fine pixel size 0.3 mm outside the 0.6-5 mm learnt"]
    assert records["small pixels"]["method"] == "dct-mlem" and records["small pixels"]["requested_method"] == "dct-mlem-vdsr"
    assert records["small pixels"]["model"] is None and records["classical"]["refinement_guard"] is None
    assert records["inside"]["count_noise"] == [{"sigma": 1.0, "estimate": None}]  # 0.93 coarse pixels: too sharp to measure
    assert records["classical"]["count_noise"] == [{"sigma": 1.0, "estimate": anscombe_sigma(torch.from_numpy(counts))}]
    assert torch.equal(outputs["small pixels"], outputs["classical"])
    assert not torch.allclose(outputs["inside"], outputs["classical"])
    method = load_super_resolution("dct-mlem-vdsr", 4, str(checkpoint))
    image = read_image(source)
    response = SystemResponse(PlanarAcquisition(), 2.4, "given")
    bicubic = load_super_resolution("bicubic", 4)
    assert guard_refinement(bicubic, image, response) == (bicubic, None)
    assert guard_refinement(method, image, response)[0] is method


def test_the_classical_methods_are_the_named_count_restorations() -> None:
    """``dct-mlem`` and ``mlem`` run :data:`DCT_MLEM` and :data:`MLEM` of ``models.count_restoration``: same output."""
    generator = torch.Generator().manual_seed(0)
    counts = torch.poisson(torch.rand(24, 20, generator=generator) * 40, generator=generator).to(torch.float64)
    for name, named in (("dct-mlem", DCT_MLEM), ("mlem", MLEM)):
        restored = load_super_resolution(name, 4)(counts, 8.6)
        torch.testing.assert_close(restored, named(counts, 8.6, 4), rtol=0, atol=0)
        assert float(restored.sum()) == pytest.approx(float(counts.sum()), rel=1e-12)


def test_dct_mlem_runs_more_iterations_for_a_wider_response_in_pixels(tmp_path: Path) -> None:
    """``dct-mlem`` with no iteration count runs ``40 · (FWHM / 9)²`` (within 40…160); given counts, and the
    networks' inputs, stay as they are; a refining method falling back runs ``dct-mlem`` exactly."""
    assert [response_iterations(40, fwhm) for fwhm in (4.0, 9.0, 12.0, 15.1, 40.0)] == [40, 40, 71, 113, 160]
    generator = torch.Generator().manual_seed(1)
    counts = torch.poisson(torch.rand(16, 16, generator=generator) * 40, generator=generator).to(torch.float64)
    default, given = load_super_resolution("dct-mlem", 4), load_super_resolution("dct-mlem", 4, iterations=40)
    assert (default.mlem_iterations(15.1), given.mlem_iterations(15.1), default.mlem_iterations(8.6)) == (113, 40, 40)
    torch.testing.assert_close(default(counts, 15.1), CountRestoration(True, 113, 1.0)(counts, 15.1, 4), rtol=0, atol=0)
    torch.testing.assert_close(given(counts, 15.1), DCT_MLEM(counts, 15.1, 4), rtol=0, atol=0)
    torch.testing.assert_close(default(counts, 8.6), given(counts, 8.6), rtol=0, atol=0)
    checkpoint = _tiny_refiner(tmp_path / "refiner.pt")
    assert load_super_resolution("dct-mlem-vdsr", 4, str(checkpoint)).mlem_iterations(15.1) == 40
    image = Image(counts.to(torch.float32), affine_from_spacing((2.36, 2.36)), 2, "nm", {})
    response = SystemResponse(PlanarAcquisition(), 0.59, "given")  # below the 0.6 mm learnt: falls back
    fallback, record = guard_refinement(load_super_resolution("dct-mlem-vdsr", 4, str(checkpoint)), image, response)
    assert record["fallback"] == "dct-mlem" and fallback.mlem_iterations(response.fwhm_pixels) == 112
    source = write_image(image, tmp_path / "fine.nii.gz")
    written = superres_file(source, tmp_path / "out.nii.gz", SuperResolutionRequest(method="dct-mlem", pixel_size_mm=0.59))
    assert written["iterations"] == 112 and written["system_response"]["fwhm_pixels"] == pytest.approx(response.fwhm_pixels)

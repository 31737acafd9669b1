"""Alignment: our closed-form similarity is insightface's estimate_norm (Umeyama) on real landmarks, and the
112x112 crop is norm_crop's to within one grey level (interpolation rounding)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edge.vision import load_image
from edge.vision.align import ARCFACE_TEMPLATE, CROP_SIZE, align, similarity_matrix

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from insightface.utils.face_align import arcface_dst, estimate_norm, norm_crop


def test_the_template_is_insightfaces() -> None:
    assert np.array_equal(ARCFACE_TEMPLATE, arcface_dst) and ARCFACE_TEMPLATE.dtype == arcface_dst.dtype


def test_same_transform_and_crop_as_insightface(engine, t1_path: Path,  # type: ignore[no-untyped-def]
                                                unknown_photos: list[Path]) -> None:
    faces = 0
    for path in [t1_path, *unknown_photos[::6]]:
        image = load_image(path)
        for det in engine.detect(image):
            lmk = det.landmarks.astype(np.float32)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref_m = estimate_norm(lmk)
                ref_crop = norm_crop(image, lmk)
            ours_m = similarity_matrix(det.landmarks)
            pts = np.c_[np.array([[0, 0], [image.shape[1], 0], [0, image.shape[0]], [image.shape[1], image.shape[0]]],
                                 float), np.ones(4)]
            assert np.abs(pts @ ours_m.T - pts @ ref_m.T).max() < 1e-3  # whole image, not just the landmarks
            crop = align(image, det.landmarks)
            assert crop.shape == (CROP_SIZE, CROP_SIZE, 3) and crop.dtype == np.uint8
            assert int(np.abs(crop.astype(np.int16) - ref_crop).max()) <= 1
            faces += 1
    assert faces >= 30


def test_degenerate_landmarks_give_a_finite_matrix() -> None:
    m = similarity_matrix(np.full((5, 2), 40.0, np.float32))  # all five at one point: no scale to estimate
    assert np.isfinite(m).all()

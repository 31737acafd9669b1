"""1:N search: exact top-k, several templates per person, threshold and margin rules."""

from __future__ import annotations

import numpy as np
import pytest

from edge.vision.gallery import Gallery


def _unit(rng: np.random.Generator, n: int, d: int = 128) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(ids: list[str], m: np.ndarray, e: np.ndarray, k: int) -> list[tuple[str, float]]:
    best: dict[str, float] = {}
    for pid, s in zip(ids, (m @ e).tolist(), strict=True):
        best[pid] = max(best.get(pid, -2.0), s)
    return sorted(best.items(), key=lambda kv: kv[1], reverse=True)[:k]


@pytest.mark.parametrize("rows", [500, 30_000])
def test_search_is_exact_with_several_templates_per_person(rows: int) -> None:
    rng = np.random.default_rng(7)
    m = _unit(rng, rows)
    ids = [f"p{i // 3}" for i in range(rows)]  # three templates each
    order = rng.permutation(rows)  # the gallery must not rely on input order
    g = Gallery([ids[i] for i in order], m[order], "sface")
    assert len(g) == -(-rows // 3)
    for q in range(25):
        # probes near an enrolled template (genuine-like) and random ones (stranger-like)
        e = m[q * 11] + (0.6 if q % 2 else 3.0) * _unit(rng, 1)[0]
        e /= np.linalg.norm(e)
        got = [(c.person_id, c.score) for c in g.search(e, 5)]
        want = _brute(ids, m, e, 5)
        assert [p for p, _ in got] == [p for p, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


def test_match_requires_threshold_and_margin() -> None:
    rng = np.random.default_rng(1)
    base = _unit(rng, 3)
    g = Gallery(["alice", "bob", "carol"], base, "sface")
    assert g.match(base[0], threshold=0.5, margin=0.06).person_id == "alice"
    # a stranger (random direction) stays unknown
    stranger = g.match(_unit(rng, 1)[0], threshold=0.5, margin=0.06)
    assert stranger.person_id is None and stranger.reason == "below_threshold"
    # two near-identical persons: a probe between them is ambiguous, not named
    twin = base[0] + 0.01 * base[1]
    g2 = Gallery(["alice", "alice-twin"], np.stack([base[0], twin / np.linalg.norm(twin)]), "sface")
    m = g2.match(base[0], threshold=0.5, margin=0.06)
    assert m.person_id is None and m.reason == "ambiguous" and m.score > 0.99


def test_empty_gallery_and_dimension_mismatch() -> None:
    g = Gallery.empty("sface")
    assert g.match(np.ones(128, np.float32) / np.sqrt(128), 0.5, 0.06).reason == "empty_gallery"
    g = Gallery(["a"], np.ones((1, 128), np.float32), "sface")
    with pytest.raises(ValueError):
        g.search(np.ones(64, np.float32))


def test_top_k_is_the_exact_ranking_on_both_search_paths() -> None:
    rng = np.random.default_rng(11)
    ids = [f"p{i % 700:04d}" for i in range(1000)]  # 700 persons, some with two templates
    m = rng.standard_normal((1000, 32)).astype(np.float32)
    g = Gallery(ids, m, "m")
    unit = m / np.linalg.norm(m, axis=1, keepdims=True)
    for q in range(20):
        e = unit[q * 37] + 0.3 * rng.standard_normal(32).astype(np.float32)
        e /= np.linalg.norm(e)
        per_person: dict[str, float] = {}
        for pid, s in zip(ids, unit @ e, strict=True):
            per_person[pid] = max(per_person.get(pid, -2.0), float(s))
        want = sorted(per_person.items(), key=lambda kv: -kv[1])
        for k in (1, 2, 5, 16, 17, 40):  # 16: the last argmax size; 17 and 40: argpartition
            got = g.search(e, k)
            assert [c.person_id for c in got] == [pid for pid, _ in want[:k]]
            assert np.allclose([c.score for c in got], [s for _, s in want[:k]], atol=1e-5)

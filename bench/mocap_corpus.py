"""Figures of a mocap corpus built by ``wham-ros build-corpus``: totals, joint accuracy, feet.

    .venv/bin/python bench/mocap_corpus.py CORPUS

Joint distances (cm) are per rig over every frame and checked joint (hips, knees, ankles,
toes, neck, head, shoulders, elbows, wrists): "after bone-length scaling" against the
source skeleton rebuilt with the body's bone lengths, "placement" against the source
joints scaled by the leg-length ratio (see wham_ros/mocap/quality.py). Foot figures compare
the source's ankle and toe joints with the body's: depth below their resting height and
horizontal speed while the source foot is planted; soles are the body's mesh feet points.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from wham_ros.mocap.corpus import load_corpus
from wham_ros.mocap.quality import FOOT_JOINTS, body_points, foot_figures, joint_distances, rebuilt_source, sole_figures


def _cm(values: list[np.ndarray]) -> str:
    v = 100 * np.concatenate([np.ravel(x) for x in values])
    return f"{v.mean():5.2f} / {np.percentile(v, 95):5.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus")
    args = parser.parse_args()
    corpus = load_corpus(args.corpus)
    per_rig: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    subjects: dict[str, list] = defaultdict(lambda: [0, 0])
    for entry in corpus.clips:
        clip = corpus.load(entry["id"])
        names = tuple(str(n) for n in clip["source_point_names"])
        source = clip["source_points"].astype(np.float64)
        body = body_points(clip["joints"].astype(np.float64), names)
        r = per_rig[entry["rig"]]
        rebuilt = rebuilt_source(source, names, clip["rest_joints"], entry["ground_offset"])
        r["scaled"].append(joint_distances(body, rebuilt))
        r["placement"].append(joint_distances(body, source))
        feet = [names.index(n) for n in FOOT_JOINTS]
        for key, value in foot_figures(source[:, feet], body[:, feet], entry["fps"]).items():
            r[key].append(value)
        for key, value in sole_figures(clip["feet"], clip["contact"]).items():
            r[key].append(value)
        r["offset"].append(entry["ground_offset"])
        r["folded"].append(entry["folded"])
        r["frames"].append(entry["frames"])
        subjects[entry["subject"]][0] += 1
        subjects[entry["subject"]][1] += entry["frames"]

    fps = corpus.index["conventions"]["fps"]
    frames = sum(f for _, f in subjects.values())
    print(f"corpus {os.path.abspath(args.corpus)}: {len(corpus.clips)} clips, {frames} frames at {fps:g} fps, "
          f"{frames / fps / 3600:.3f} h; body model {corpus.index['body_model']['sha256_16']} "
          f"({corpus.index['body_model']['vertices']} vertices)")
    print("\n| subject | clips | frames | minutes |\n|---|---|---|---|")
    for subject in sorted(subjects):
        n, f = subjects[subject]
        print(f"| {subject} | {n} | {f} | {f / fps / 60:.2f} |")
    print("\njoint distance, cm, mean / p95 (checked joints x frames)")
    print("| rig | clips | after bone-length scaling | placement (leg-length scale only) |\n|---|---|---|---|")
    for rig, r in per_rig.items():
        print(f"| {rig} | {len(r['frames'])} | {_cm(r['scaled'])} | {_cm(r['placement'])} |")
    print("\nfeet: ankle and toe joints, source vs retargeted body; soles = the body's mesh foot points")
    print("| rig | depth below resting height, cm, mean / p95: source | body | frames > 2 cm: source | body "
          "| planted horizontal speed, cm/s, mean / p95: source | body | sole penetration, cm, mean / p95 "
          "| frames > 1 cm | sole height in contact, cm, median | ground offset, cm, median | folded joint-frames |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for rig, r in per_rig.items():
        deep = [100 * np.mean(np.concatenate(r[f"depth_{k}"]) > 0.02) for k in ("source", "body")]
        pen = np.concatenate(r["penetration"])
        print(f"| {rig} | {_cm(r['depth_source'])} | {_cm(r['depth_body'])} | {deep[0]:.1f} % | {deep[1]:.1f} % "
              f"| {_cm(r['skate_source'])} | {_cm(r['skate_body'])} | {_cm(r['penetration'])} "
              f"| {100 * np.mean(pen > 0.01):.1f} % | {100 * np.median(np.concatenate(r['float'])):.2f} "
              f"| {100 * np.median(r['offset']):.2f} | {sum(r['folded'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

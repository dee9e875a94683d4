"""``wham-ros fetch-official``: the official files the WHAM demo uses, downloaded resumably and checked.

The files and their public locations are those of WHAM's ``fetch_demo_data.sh`` (the authors' Google
Drive), except YOLOv8x, which comes from the Ultralytics GitHub release assets. They are licence-restricted,
so nothing is downloaded until ``--accept-licences`` is given; the SMPL neutral model needs a registration
and is installed from the user's own copy with ``--smpl FILE``.

Layout of the official folder (``--dest``, default ``$WHAM_ROS_HOME/official``, ``WHAM_ROS_HOME`` defaulting
to ``~/.local/share/wham_ros``)::

    checkpoints/wham_vit_bedlam_w_3dpw.pth.tar   WHAM, the demo default        (node: checkpoint)
    checkpoints/wham_vit_w_3dpw.pth.tar          WHAM without BEDLAM
    checkpoints/yolov8x.pt                       person detector               (node: yolo_checkpoint)
    checkpoints/vitpose-h-multi-coco.pth         2D keypoints                  (node: vitpose_checkpoint)
    checkpoints/hmr2a.ckpt                       image features, first body    (node: hmr2_checkpoint)
    body_models/J_regressor_{wham,h36m,feet}.npy from WHAM's body_models.tar.gz
    body_models/smpl/SMPL_NEUTRAL.pkl            --smpl FILE                   (node: body_model_dir = body_models)

A download goes to ``<file>.part`` and only reaches its final name by an atomic rename once complete and
checked, so a file under its final name is always whole. An interrupted download keeps its ``.part`` and
resumes from it with an HTTP Range request (next attempt or next run). A ``.part`` that fails its sha256
or format check is deleted: resuming it would only reproduce the failure.

Base URLs (``--base-url`` or ``$WHAM_ROS_FETCH_BASE_URL`` for every source, or one source's own variable in
:data:`SOURCE_URL_ENV`) let a mirror or a test server stand in for Google Drive and GitHub.
"""
from __future__ import annotations

import argparse
import hashlib
import html.parser
import http.client
import http.cookiejar
import io
import os
import posixpath
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass

from wham_ros import __version__
from wham_ros.errors import FetchError, WhamError

HOME_ENV = "WHAM_ROS_HOME"
DEFAULT_HOME = os.path.join("~", ".local", "share", "wham_ros")
BASE_URL_ENV = "WHAM_ROS_FETCH_BASE_URL"
#: where each kind of source lives; the base (scheme and host) is what the overrides replace
DEFAULT_BASES = {"gdrive": "https://drive.google.com", "github": "https://github.com"}
SOURCE_URL_ENV = {"gdrive": "WHAM_ROS_FETCH_GDRIVE_URL", "github": "WHAM_ROS_FETCH_GITHUB_URL"}

SMPL_PATH = os.path.join("body_models", "smpl", "SMPL_NEUTRAL.pkl")
BODY_MODELS = "body_models"
#: SMPL neutral releases as their zips name them: SMPLify's (the WHAM demo's) and SMPL 1.1's
SMPL_MEMBERS = ("basicModel_neutral_lbs_10_207_0_v1.0.0.pkl", "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
                "SMPL_NEUTRAL.pkl")
SMPL_VERTICES = 6890
SMPL_REGISTRATION = (
    "The SMPL neutral model needs a registration, so it cannot be downloaded for you. As the WHAM demo does:\n"
    "  1. register at https://smplify.is.tue.mpg.de and accept the SMPLify licence (it includes the SMPL model\n"
    "     licence, https://smpl.is.tue.mpg.de: non-commercial scientific research only, no redistribution);\n"
    "  2. download mpips_smplify_public_v2.zip (it holds basicModel_neutral_lbs_10_207_0_v1.0.0.pkl);\n"
    "  3. wham-ros fetch-official --smpl mpips_smplify_public_v2.zip   (the zip or the .pkl itself)")

#: the node parameter each fetched file is meant for (``official_paths`` keys)
NODE_PARAMS = {"checkpoint": "wham", "yolo_checkpoint": "yolov8x", "vitpose_checkpoint": "vitpose-h",
               "hmr2_checkpoint": "hmr2a", "body_model_dir": BODY_MODELS}

_SMPL_TERMS = ("SMPL licence (https://smpl.is.tue.mpg.de/modellicense.html): non-commercial scientific "
               "research only")
_WHAM_TERMS = ("WHAM (yohanshin/WHAM): the code is MIT; the weights carry no licence statement of their own. "
               "They were trained on AMASS, 3DPW and BEDLAM (research-only data) with the SMPL body model: "
               "use them for non-commercial research only.")


@dataclass(frozen=True)
class Official:
    """One file (or archive) of the table: where it goes, where it comes from and how it is checked."""

    name: str                  # for --only and official_paths
    path: str                  # relative to the official folder; an archive's is under downloads/
    what: str
    terms: str                 # licence and terms, printed before anything is downloaded
    source: str                # a key of DEFAULT_BASES
    ref: str                   # Google Drive file id, or the path under the GitHub base
    sha256: str | None         # None: not published anywhere known; then only the format is checked
    form: str                  # "torch" (a torch.save zip or legacy pickle) or "tar.gz"
    size: str                  # approximate, for the listing
    extract: tuple[tuple[str, str], ...] = ()   # archive member file name -> path in the folder

    def url(self, bases: dict[str, str]) -> str:
        base = bases[self.source].rstrip("/")
        if self.source == "gdrive":
            # the URL fetch_demo_data.sh asks for; Drive may still answer a large file with a confirmation page
            return f"{base}/uc?id={self.ref}&export=download&confirm=t"
        return f"{base}/{self.ref}"

    def outputs(self) -> tuple[str, ...]:
        """Paths (relative to the official folder) that exist once this entry is installed."""
        return tuple(target for _, target in self.extract) if self.extract else (self.path,)


# sha256 values: WHAM's authors publish none. Those given are recorded by third-party installers that pin
# WHAM's files (the lab2shot WHAM/GVHMR extensions and others; hmr2a, ViTPose-H and yolov8x there come from
# the camenduru/GVHMR mirror, stated to hold the same bytes as WHAM's Drive). A None is checked for format only.
OFFICIAL: tuple[Official, ...] = (
    Official("wham", "checkpoints/wham_vit_bedlam_w_3dpw.pth.tar", "WHAM network, BEDLAM + 3DPW (demo default)",
             _WHAM_TERMS, "gdrive", "19qkI-a6xuwob9_RFNSPWf1yWErwVVlks",
             "91d250d2d298b00f200aa39df36253b55ca434188c2934d8e91e5e0777fb67fd", "torch", "503 MB"),
    Official("wham-3dpw", "checkpoints/wham_vit_w_3dpw.pth.tar", "WHAM network, 3DPW (README evaluation)",
             _WHAM_TERMS, "gdrive", "1i7kt9RlCCCNEW2aYaDWVr-G778JkLNcB", None, "torch", "503 MB"),
    Official("yolov8x", "checkpoints/yolov8x.pt", "YOLOv8x person detector (official front end)",
             "Ultralytics YOLOv8 weights: AGPL-3.0 (https://github.com/ultralytics/ultralytics/blob/main/LICENSE); "
             "use outside the AGPL's terms needs an Ultralytics Enterprise licence.",
             "github", "ultralytics/assets/releases/download/v8.1.0/yolov8x.pt", None, "torch", "137 MB"),
    Official("vitpose-h", "checkpoints/vitpose-h-multi-coco.pth", "ViTPose-H 2D keypoints (official front end)",
             "ViTPose (ViTAE-Transformer/ViTPose): Apache-2.0; trained on COCO and other public pose data sets, "
             "each under its own terms (some research only).",
             "gdrive", "1xyF7F3I7lWtdq82xmEPVQ5zl4HaasBso",
             "50e33f4077ef2a6bcfd7110c58742b24c5859b7798fb0eedd6d2215e0a8980bc", "torch", "2.5 GB"),
    Official("hmr2a", "checkpoints/hmr2a.ckpt", "HMR 2.0a image features and first body",
             "4D-Humans HMR 2.0a (shubham-goel/4D-Humans): the code is MIT; trained with the SMPL body model, "
             f"whose {_SMPL_TERMS}, on research data sets.",
             "gdrive", "1J6l8teyZrL0zFzHhzkC7efRhU0ZJ5G9Y",
             "2dcf79638109781d1ae5f5c44fee5f55bc83291c210653feead9b7f04fa6f20e", "torch", "2.7 GB"),
    Official("regressors", "downloads/body_models.tar.gz", "WHAM's joint regressors (from body_models.tar.gz)",
             f"Auxiliary SMPL data from the WHAM authors, derived from SMPL: {_SMPL_TERMS}. Only the three "
             "regressors are kept; the archive is deleted after extraction.",
             "gdrive", "1pbmzRbWGgae6noDIyQOnohzaVnX_csUZ",
             "533a8b6b05ba3bc3d35c1dcaec757a4164a669625116a16d30d7642f3b200c8c", "tar.gz", "1 MB",
             extract=tuple((f, posixpath.join(BODY_MODELS, f))
                           for f in ("J_regressor_wham.npy", "J_regressor_h36m.npy", "J_regressor_feet.npy"))),
)

CHUNK = 1 << 20
TIMEOUT_S = 60.0
#: Drive may answer with more than one page (redirect, virus-scan warning) before the file itself
MAX_PAGES = 3
MAX_PAGE_BYTES = 1 << 20
MAX_MEMBER_BYTES = 1 << 30
#: what torch.save wrote before its zip format (a pickled magic number)
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"


def home_dir() -> str:
    """``$WHAM_ROS_HOME``, else ``~/.local/share/wham_ros``."""
    return os.path.abspath(os.path.expanduser(os.environ.get(HOME_ENV) or DEFAULT_HOME))


def official_dir(home: str | None = None) -> str:
    """The official folder: ``<home>/official``, ``home`` defaulting to :func:`home_dir`."""
    return os.path.join(os.path.abspath(os.path.expanduser(home)) if home else home_dir(), "official")


def _installed(folder: str) -> dict[str, str]:
    found = {e.name: os.path.join(folder, e.path) for e in OFFICIAL
             if not e.extract and os.path.isfile(os.path.join(folder, e.path))}
    smpl = os.path.join(folder, SMPL_PATH)
    if os.path.isfile(smpl):
        found["smpl"] = smpl
    regressors = next(e for e in OFFICIAL if e.extract)
    if "smpl" in found and all(os.path.isfile(os.path.join(folder, p)) for p in regressors.outputs()):
        found[BODY_MODELS] = os.path.join(folder, BODY_MODELS)
    return found


def official_paths(home: str | None = None) -> dict[str, str]:
    """Fetched files that exist under ``<home>/official`` (``home`` defaulting to ``$WHAM_ROS_HOME``).

    Keys are the table's names (``wham``, ``wham-3dpw``, ``yolov8x``, ``vitpose-h``, ``hmr2a``), ``smpl``
    (the installed pickle) and ``body_models`` (the folder, only once SMPL and all three regressors are
    there); values are absolute paths. :data:`NODE_PARAMS` says which node parameter each key is for.
    Reads the file system only: it creates, downloads and prints nothing.
    """
    return _installed(official_dir(home))


def source_bases(base_url: str | None = None) -> dict[str, str]:
    """Base URL of each source: ``base_url`` for all, else each source's variable, else $WHAM_ROS_FETCH_BASE_URL,
    else the real hosts."""
    everywhere = os.environ.get(BASE_URL_ENV)
    return {kind: base_url or os.environ.get(SOURCE_URL_ENV[kind]) or everywhere or default
            for kind, default in DEFAULT_BASES.items()}


# ------------------------------------------------------------------ HTTP


class _Retry(Exception):
    """The connection broke or a server error came: worth another attempt that resumes from the .part."""


class _RangeRefused(Exception):
    """HTTP 416 to a Range request: the .part is complete already, or longer than the file."""

    def __init__(self, total: int | None) -> None:
        super().__init__(f"range not satisfiable (file size {total})")
        self.total = total


class _PageLinks(html.parser.HTMLParser):
    """Forms (action, hidden fields), links and the title of a web page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, list[tuple[str, str]]]] = []
        self.links: list[str] = []
        self.title = ""
        self._in_form = False
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((a.get("action", ""), []))
            self._in_form = True
        elif tag == "input" and self._in_form and a.get("name"):
            self.forms[-1][1].append((a["name"], a.get("value", "")))
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def _confirm_target(page: _PageLinks, page_url: str) -> str | None:
    """Where Drive's "can't scan this file for viruses" page says the file really is, or None.

    Current Drive pages carry a form (id, export, confirm, uuid fields, method get); older ones a link
    with ``confirm=<token>`` beside a cookie, which the opener's cookie jar sends back.
    """
    candidates = []
    for action, fields in page.forms:
        if any(name == "confirm" for name, _ in fields):
            target = urllib.parse.urljoin(page_url, action)
            candidates.append(target + ("&" if "?" in target else "?") + urllib.parse.urlencode(fields))
    candidates += [urllib.parse.urljoin(page_url, href) for href in page.links if "confirm=" in href]
    # never let a page send the download to a file: or other non-web URL
    return next((c for c in candidates if urllib.parse.urlsplit(c).scheme in ("http", "https")), None)


def _opener() -> urllib.request.OpenerDirector:
    """HTTP(S) with redirects, proxies from the environment and a cookie jar; no file:, ftp: or data: URLs."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), urllib.request.HTTPHandler(),
                    urllib.request.HTTPSHandler(), urllib.request.HTTPDefaultErrorHandler(),
                    urllib.request.HTTPRedirectHandler(), urllib.request.HTTPErrorProcessor(),
                    urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())):
        opener.add_handler(handler)
    return opener


def _open(opener: urllib.request.OpenerDirector, url: str, start: int, label: str) -> http.client.HTTPResponse:
    """The response that carries the file's bytes (from ``start``), past any Drive confirmation pages."""
    headers = {"User-Agent": f"wham_ros/{__version__} fetch-official"}
    if start:
        headers["Range"] = f"bytes={start}-"
    for _ in range(MAX_PAGES + 1):
        try:
            resp = opener.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 416:
                raise _RangeRefused(_content_range(exc.headers.get("Content-Range"))[1]) from exc
            if exc.code >= 500 or exc.code == 429:
                raise _Retry(f"HTTP {exc.code} {exc.reason} from {url}") from exc
            raise FetchError(f"{label}: HTTP {exc.code} {exc.reason} from {url}") from exc
        if resp.headers.get_content_type() != "text/html":
            return resp
        page = _PageLinks()
        with resp:
            page.feed(resp.read(MAX_PAGE_BYTES).decode("utf-8", "replace"))
        target = _confirm_target(page, resp.geturl())
        if target is None:
            title = " ".join(page.title.split()) or "no title"
            raise FetchError(f"{label}: {url} answered with a web page ({title!r}), not the file: the file may be "
                             f"over its download quota or no longer shared; try again later, or save it in a browser "
                             f"and put it in place yourself")
        url = target
    raise FetchError(f"{label}: {url}: still a confirmation page after {MAX_PAGES} pages")


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range: bytes a-b/n`` (or ``bytes */n``) header."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    first = span.split("-")[0]
    return (int(first) if first.isdigit() else None), (int(total) if total.isdigit() else None)


class _Progress:
    """tqdm when it is installed (shown on terminals only), else a line every 10 %."""

    def __init__(self, label: str, total: int | None, initial: int) -> None:
        self.label, self.total, self.n = label, total, initial
        self._next = initial
        try:
            from tqdm import tqdm
        except ImportError:
            self._bar = None
        else:
            self._bar = tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                             disable=None, file=sys.stderr)

    def update(self, n: int) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.total and self.n >= self._next:
            print(f"  {self.label}: {self.n / 2**20:.0f} of {self.total / 2**20:.0f} MiB", file=sys.stderr, flush=True)
            self._next = self.n + self.total // 10

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _transfer(opener: urllib.request.OpenerDirector, url: str, part: str, label: str) -> None:
    """Bring ``part`` up to the whole file: resume it with a Range request, or restart where that fails."""
    have = os.path.getsize(part) if os.path.isfile(part) else 0
    try:
        resp = _open(opener, url, have, label)
    except _RangeRefused as exc:
        if not have:
            raise FetchError(f"{label}: {url} refused a plain request with HTTP 416") from exc
        if exc.total == have:
            return          # the .part already holds every byte (stopped before its check)
        os.remove(part)     # longer than the file, or the server cannot tell: start over
        have = 0
        resp = _open(opener, url, 0, label)
    with resp:
        if resp.status == 206:
            first, total = _content_range(resp.headers.get("Content-Range"))
            if first != have:
                os.remove(part)
                raise _Retry(f"{url} sent bytes from {first}, asked from {have}")
            mode = "ab"
        else:               # 200: the server ignored the Range request, so the whole file comes again
            length = resp.headers.get("Content-Length")
            have, total, mode = 0, (int(length) if length and length.isdigit() else None), "wb"
        bar = _Progress(label, total, have)
        try:
            with open(part, mode) as fh:
                while chunk := resp.read(CHUNK):
                    fh.write(chunk)
                    bar.update(len(chunk))
                fh.flush()
                os.fsync(fh.fileno())
        finally:
            bar.close()
    got = os.path.getsize(part)
    if total is not None and got != total:
        raise _Retry(f"{url} ended after {got} of {total} bytes")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _format_problem(path: str, form: str) -> str | None:
    """Why ``path`` is not a file of ``form`` (an error page, a truncated zip, ...), or None."""
    with open(path, "rb") as fh:
        head = fh.read(64)
    if not head:
        return "it is empty"
    if head.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html", b"<?xml")):
        return "it is a web page (HTML)"
    if form == "tar.gz":
        return None if head[:2] == b"\x1f\x8b" else "it is not a gzip archive"
    if head.startswith(LEGACY_TORCH_MAGIC):
        return None
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if any(n == "data.pkl" or n.endswith("/data.pkl") for n in zf.namelist()):
                return None
        return "it is a zip archive but not a torch checkpoint (no data.pkl)"
    return "it is neither a torch checkpoint (zip with data.pkl, or the legacy pickle format) nor complete"


def download(url: str, dest: str, *, sha256: str | None = None, form: str = "torch", label: str = "",
             retries: int = 3, backoff: float = 2.0) -> str:
    """Download ``url`` to ``dest`` through ``dest + '.part'``; return ``dest``.

    Broken connections and server errors are retried ``retries`` times, each attempt resuming from the
    ``.part`` (``backoff`` x attempt seconds apart); when they run out the ``.part`` is kept for the next
    run. The whole file is then checked (``sha256`` when given, else its ``form``) and renamed into place;
    one that fails is deleted and a :class:`FetchError` names the file, the expected and the actual value.
    """
    label = label or os.path.basename(dest)
    part = dest + ".part"
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    opener = _opener()
    for attempt in range(retries + 1):
        try:
            _transfer(opener, url, part, label)
            break
        except (_Retry, http.client.HTTPException, ConnectionError, TimeoutError, urllib.error.URLError) as exc:
            kept = os.path.getsize(part) if os.path.isfile(part) else 0
            if attempt == retries:
                raise FetchError(f"{label}: download from {url} failed after {retries + 1} attempts "
                                 f"({type(exc).__name__}: {exc}); {kept} bytes are kept in {part}: run the "
                                 f"command again to resume") from exc
            print(f"  {label}: {type(exc).__name__}: {exc}; resuming from byte {kept}", file=sys.stderr)
            time.sleep(backoff * (attempt + 1))
    problem = _format_problem(part, form)
    if problem:
        os.remove(part)
        raise FetchError(f"{label}: {url} did not serve the expected {form} file: {problem}; the download was "
                         f"deleted")
    if sha256:
        got = _sha256(part)
        if got != sha256.lower():
            os.remove(part)
            raise FetchError(f"{label}: sha256 mismatch for {dest} from {url}: expected {sha256}, got {got}; the "
                             f"download was deleted (if it happens again, the published file has changed)")
    os.replace(part, dest)
    return dest


# ------------------------------------------------------------------ installing


def _write_atomic(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    part = path + ".part"
    with open(part, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(part, path)


def _check_regressor(name: str, data: bytes, label: str) -> None:
    import numpy as np

    from wham_ros.model.body_model import REGRESSOR_FILES

    rows = next(r for f, r in REGRESSOR_FILES.values() if f == name)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FetchError(f"{label}: {name} in the archive is not a numpy array: {exc}") from exc
    if arr.shape != (rows, SMPL_VERTICES):
        raise FetchError(f"{label}: {name} has shape {arr.shape}, expected ({rows}, {SMPL_VERTICES})")


def extract_members(archive: str, folder: str, members: tuple[tuple[str, str], ...], label: str = "") -> None:
    """Copy the named regular files out of a .tar.gz into ``folder``; nothing else of the archive is written.

    A member is found by its file name at any depth (the shallowest wins), so the archive's own folder
    names do not matter and no path from the archive is ever used for writing. All members are read and
    checked before any is written, so a bad archive installs none of them.
    """
    label = label or os.path.basename(archive)
    wanted = dict(members)
    found: dict[str, tuple[int, bytes]] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                base = posixpath.basename(member.name)
                depth = member.name.count("/")
                if base not in wanted or (base in found and found[base][0] <= depth):
                    continue
                if not member.isfile() or member.size > MAX_MEMBER_BYTES:
                    raise FetchError(f"{label}: {member.name} in {archive} is not a regular file of a sane size")
                fh = tar.extractfile(member)
                found[base] = (depth, fh.read() if fh else b"")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise FetchError(f"{label}: {archive} is not a readable .tar.gz: {exc}") from exc
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise FetchError(f"{label}: {archive} lacks {missing}")
    for base, (_, data) in found.items():
        if base.endswith(".npy"):
            _check_regressor(base, data, label)
    for base, (_, data) in found.items():
        _write_atomic(os.path.join(folder, wanted[base]), data)


def fetch_entry(entry: Official, folder: str, bases: dict[str, str], *, retries: int = 3,
                backoff: float = 2.0) -> None:
    """Download one table entry into ``folder`` (an archive: download, extract, delete the archive)."""
    url = entry.url(bases)
    print(f"{entry.name}: {entry.what}, about {entry.size}, from {url}")
    dest = download(url, os.path.join(folder, entry.path), sha256=entry.sha256, form=entry.form, label=entry.name,
                    retries=retries, backoff=backoff)
    print(f"{entry.name}: {'sha256 ok' if entry.sha256 else 'format ok (no published sha256)'}, {dest}")
    if entry.extract:
        try:
            extract_members(dest, folder, entry.extract, entry.name)
        finally:
            os.remove(dest)
        print(f"{entry.name}: extracted {', '.join(t for _, t in entry.extract)}")


def install_smpl(src: str, folder: str) -> str:
    """Install the user's SMPL neutral model (.pkl, or a zip holding one) as ``<folder>/body_models/smpl/
    SMPL_NEUTRAL.pkl``; return that path.

    The bytes are staged in ``SMPL_NEUTRAL.pkl.part``, read with the project's safe SMPL reader (no code in
    the file can run) and checked for SMPL's keys, shapes and 6890 vertices; only then are they renamed into
    place. Raises :class:`~wham_ros.errors.BodyModelError` or :class:`FetchError` naming ``src``.
    """
    from wham_ros.errors import BodyModelError
    from wham_ros.model.body_model import read_smpl_pickle, validate_smpl_dict

    target = os.path.join(folder, SMPL_PATH)
    part = target + ".part"
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        if zipfile.is_zipfile(src):
            with zipfile.ZipFile(src) as zf:
                member = next((i for n in SMPL_MEMBERS for i in zf.infolist()
                               if posixpath.basename(i.filename) == n and not i.is_dir()), None)
                if member is None or member.file_size > MAX_MEMBER_BYTES:
                    raise FetchError(f"{src}: no SMPL neutral model in the zip (looked for {', '.join(SMPL_MEMBERS)})")
                with zf.open(member) as fin, open(part, "wb") as fout:
                    shutil.copyfileobj(fin, fout)
        else:
            shutil.copyfile(src, part)
        try:
            smpl = validate_smpl_dict(read_smpl_pickle(part), src)
        except BodyModelError as exc:
            raise BodyModelError(f"{src} is not an SMPL model, not installed: {exc}") from exc
        vertices = smpl["v_template"].shape[0]
        if vertices != SMPL_VERTICES:
            raise BodyModelError(f"{src} has {vertices} vertices, SMPL has {SMPL_VERTICES} (WHAM's regressors "
                                 f"are made for them): not installed")
        os.replace(part, target)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"cannot install {src} as the SMPL model: {exc}") from exc
    finally:
        if os.path.exists(part):
            os.remove(part)
    return target


# ------------------------------------------------------------------ command


def _select(only: str | None) -> tuple[Official, ...]:
    if not only:
        return OFFICIAL
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in {e.name for e in OFFICIAL}]
    if unknown:
        raise FetchError(f"--only: unknown {unknown}; the files are {', '.join(e.name for e in OFFICIAL)}")
    return tuple(e for e in OFFICIAL if e.name in names)


def _print_terms(entries: tuple[Official, ...]) -> None:
    print("wham-ros fetch-official downloads these files; each comes under its own terms:\n")
    for e in entries:
        print(f"{e.name} ({e.path}, about {e.size}): {e.what}\n  {e.terms}\n")
    print(f"smpl ({SMPL_PATH}): {_SMPL_TERMS}.\n{SMPL_REGISTRATION}\n")


def _print_listing(folder: str, entries: tuple[Official, ...]) -> None:
    print(f"official files in {folder}:")
    for e in entries:
        paths = [os.path.join(folder, p) for p in e.outputs()]
        part = os.path.join(folder, e.path) + ".part"
        if all(os.path.isfile(p) for p in paths):
            state = "present"
        elif os.path.isfile(part):
            state = f"partial ({os.path.getsize(part) / 2**20:.0f} MiB in {e.path}.part)"
        else:
            state = f"missing (about {e.size})"
        print(f"  {e.name:11s} {state:28s} {', '.join(e.outputs())}")
    smpl = os.path.isfile(os.path.join(folder, SMPL_PATH))
    print(f"  {'smpl':11s} {'present' if smpl else 'missing (--smpl FILE)':28s} {SMPL_PATH}")
    _print_params(folder)


def _print_params(folder: str) -> None:
    found = _installed(folder)
    lines = [f"  {param}: {found[name]}" for param, name in NODE_PARAMS.items() if name in found]
    if lines:
        print("node parameters for what is there (front_end: official needs yolo_checkpoint and vitpose_checkpoint):")
        print("\n".join(lines))


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``fetch-official`` to the ``wham-ros`` sub-commands."""
    p = subparsers.add_parser("fetch-official", help="download the official WHAM demo files (licence-restricted) "
                              "and install your SMPL model")
    p.add_argument("--accept-licences", action="store_true",
                   help="accept every file's licence and terms (printed without this flag) and download")
    p.add_argument("--dest", help=f"official folder (default: ${HOME_ENV}/official, {HOME_ENV} defaulting to "
                   f"{DEFAULT_HOME})")
    p.add_argument("--only", metavar="NAME[,NAME]",
                   help=f"only these files: {', '.join(e.name for e in OFFICIAL)}")
    p.add_argument("--base-url", metavar="URL", help=f"base URL replacing Google Drive's and GitHub's (a mirror; "
                   f"default: ${BASE_URL_ENV}, or per source ${SOURCE_URL_ENV['gdrive']}, "
                   f"${SOURCE_URL_ENV['github']})")
    p.add_argument("--smpl", metavar="FILE", help="install your SMPL neutral model (the .pkl, or SMPLify's "
                   "mpips_smplify_public_v2.zip); alone, downloads nothing")
    p.add_argument("--list", action="store_true", help="show what is there and what is missing; downloads nothing")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Run ``wham-ros fetch-official``: 0 done, 1 something failed, 2 licences not accepted or bad options."""
    folder = os.path.abspath(os.path.expanduser(args.dest)) if args.dest else official_dir()
    try:
        entries = _select(args.only)
    except FetchError as exc:
        print(f"fetch-official: {exc}", file=sys.stderr)
        return 2
    if args.list:
        _print_listing(folder, entries)
        return 0
    if args.smpl:
        try:
            print(f"smpl: installed {install_smpl(args.smpl, folder)}")
        except WhamError as exc:
            print(f"fetch-official: {exc}", file=sys.stderr)
            return 1
        if not args.accept_licences:
            _print_params(folder)
            return 0
    if not args.accept_licences:
        _print_terms(entries)
        print("fetch-official: nothing downloaded: pass --accept-licences to accept the terms above and download",
              file=sys.stderr)
        return 2
    bases = source_bases(args.base_url)
    failed = []
    for e in entries:
        if all(os.path.isfile(os.path.join(folder, p)) for p in e.outputs()):
            print(f"{e.name}: already there")
            continue
        try:
            fetch_entry(e, folder, bases)
        except (WhamError, OSError) as exc:
            print(f"fetch-official: {exc}", file=sys.stderr)
            failed.append(e.name)
    if not os.path.isfile(os.path.join(folder, SMPL_PATH)):
        print(f"\n{SMPL_REGISTRATION}")
    _print_params(folder)
    if failed:
        print(f"fetch-official: failed: {', '.join(failed)} (run again to retry; partial downloads resume)",
              file=sys.stderr)
        return 1
    return 0

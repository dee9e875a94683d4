"""``wham-ros fetch-official`` against a real HTTP server on 127.0.0.1 that plays Google Drive and GitHub.

The server hands out small generated torch files; it can cut a response short, ignore Range requests,
redirect, and answer Drive-style with a virus-scan confirmation page (a form plus a cookie) before the file.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.server
import io
import os
import pickle
import tarfile
import threading
import urllib.parse
import uuid
import zipfile

import numpy as np
import pytest
import torch

from wham_ros import fetch
from wham_ros.errors import BodyModelError, FetchError

GITHUB_YOLO = "/ultralytics/assets/releases/download/v8.1.0/yolov8x.pt"


def _torch_bytes(seed: int, n: int = 60_000) -> bytes:
    buf = io.BytesIO()
    torch.save({"model": {"w": torch.randn(n, generator=torch.Generator().manual_seed(seed))}}, buf)
    return buf.getvalue()


class FakeHosts:
    """What the handler serves and what it was asked."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}          # /files/<name>
        self.drive: dict[str, bytes] = {}          # Drive file id -> bytes, behind a confirmation page
        self.cut_once: set[str] = set()            # names whose next response stops halfway
        self.ignore_range = False
        self.requests: list[tuple[str, str | None]] = []   # (path with query, Range header)
        self.tokens: dict[str, str] = {}           # uuid handed out by a confirmation page -> cookie value
        self.base = ""


class Handler(http.server.BaseHTTPRequestHandler):
    hosts: FakeHosts

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        hosts = self.hosts
        hosts.requests.append((self.path, self.headers.get("Range")))
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path.startswith("/files/"):
            self._send_file(url.path[len("/files/"):], hosts.files.get(url.path[len("/files/"):]))
        elif url.path.startswith("/redirect/"):
            self._redirect(302, "/files/" + url.path[len("/redirect/"):])
        elif url.path == GITHUB_YOLO:
            self._redirect(302, "/files/yolov8x.pt")      # GitHub sends release assets to another host
        elif url.path == "/uc":
            # drive.google.com/uc answers 303 to drive.usercontent.google.com/download
            self._redirect(303, f"/download?id={query.get('id', '')}&export=download")
        elif url.path == "/download":
            self._drive(query)
        else:
            self.send_error(404)

    def _redirect(self, code: int, where: str) -> None:
        self.send_response(code)
        self.send_header("Location", self.hosts.base + where)
        self.end_headers()

    def _drive(self, query: dict[str, str]) -> None:
        hosts, file_id = self.hosts, query.get("id", "")
        if file_id not in hosts.drive:
            self._page("Google Drive - Quota exceeded", "<p>Too many users have viewed or downloaded this file.</p>")
            return
        token = hosts.tokens.get(query.get("uuid", ""))
        if token is not None and query.get("confirm") == "t" and f"download_warning={token}" in (
                self.headers.get("Cookie") or ""):
            self._send_file(file_id, hosts.drive[file_id])
            return
        key, token = str(uuid.uuid4()), uuid.uuid4().hex
        hosts.tokens[key] = token
        form = (f'<form id="download-form" action="{hosts.base}/download" method="get">'
                f'<input type="submit" id="uc-download-link" value="Download anyway"/>'
                f'<input type="hidden" name="id" value="{file_id}"><input type="hidden" name="export" value="download">'
                f'<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{key}"></form>')
        self._page("Google Drive - Virus scan warning",
                   f"<p>Google Drive can't scan this file for viruses.</p>{form}",
                   cookie=f"download_warning={token}; Path=/")

    def _page(self, title: str, body: str, cookie: str | None = None) -> None:
        data = f"<!DOCTYPE html><html><head><title>{title}</title></head><body>{body}</body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(data)

    def _send_file(self, name: str, data: bytes | None) -> None:
        if data is None:
            self.send_error(404)
            return
        start, code = 0, 200
        rng = self.headers.get("Range")
        if rng and not self.hosts.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            code = 206
        body = data[start:]
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if code == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if name in self.hosts.cut_once:
            self.hosts.cut_once.discard(name)
            body = body[:len(body) // 2]       # HTTP/1.0: returning closes the connection mid-file
        self.wfile.write(body)


@pytest.fixture
def hosts(monkeypatch, tmp_path):
    # never the real home folder, never a proxy, never another base URL from the environment
    monkeypatch.setenv(fetch.HOME_ENV, str(tmp_path / "home"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    for var in (fetch.BASE_URL_ENV, *fetch.SOURCE_URL_ENV.values()):
        monkeypatch.delenv(var, raising=False)
    state = FakeHosts()
    handler = type("BoundHandler", (Handler,), {"hosts": state})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def _run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="wham-ros")
    fetch.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["fetch-official", *argv])
    return args.func(args)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _no_leftovers(dest: str) -> None:
    assert not os.path.exists(dest) and not os.path.exists(dest + ".part")


def test_plain_download_with_checksum(hosts, tmp_path):
    hosts.files["a.pt"] = data = _torch_bytes(0)
    dest = str(tmp_path / "out" / "a.pt")
    assert fetch.download(f"{hosts.base}/files/a.pt", dest, sha256=_sha(data)) == dest
    assert open(dest, "rb").read() == data
    assert not os.path.exists(dest + ".part")


def test_redirect_is_followed(hosts, tmp_path):
    hosts.files["a.pt"] = data = _torch_bytes(1)
    dest = str(tmp_path / "a.pt")
    fetch.download(f"{hosts.base}/redirect/a.pt", dest, sha256=_sha(data))
    assert open(dest, "rb").read() == data
    assert [p for p, _ in hosts.requests] == ["/redirect/a.pt", "/files/a.pt"]


def test_interrupted_download_resumes_with_range(hosts, tmp_path):
    hosts.files["a.pt"] = data = _torch_bytes(2)
    hosts.cut_once.add("a.pt")
    dest = str(tmp_path / "a.pt")
    fetch.download(f"{hosts.base}/files/a.pt", dest, sha256=_sha(data), backoff=0)
    assert open(dest, "rb").read() == data
    assert hosts.requests == [("/files/a.pt", None), ("/files/a.pt", f"bytes={len(data) // 2}-")]


def test_interruption_without_retries_keeps_the_part_for_the_next_run(hosts, tmp_path):
    hosts.files["a.pt"] = data = _torch_bytes(3)
    hosts.cut_once.add("a.pt")
    dest = str(tmp_path / "a.pt")
    with pytest.raises(FetchError, match=r"failed after 1 attempts.*run the command again to resume"):
        fetch.download(f"{hosts.base}/files/a.pt", dest, retries=0)
    assert not os.path.exists(dest)
    assert os.path.getsize(dest + ".part") == len(data) // 2
    fetch.download(f"{hosts.base}/files/a.pt", dest, sha256=_sha(data), retries=0)   # the next run
    assert open(dest, "rb").read() == data
    assert hosts.requests[-1] == ("/files/a.pt", f"bytes={len(data) // 2}-")


def test_server_ignoring_range_restarts_from_zero(hosts, tmp_path):
    hosts.files["a.pt"] = data = _torch_bytes(4)
    hosts.ignore_range = True
    dest = str(tmp_path / "a.pt")
    with open(dest + ".part", "wb") as fh:
        fh.write(b"stale bytes of some older download")
    fetch.download(f"{hosts.base}/files/a.pt", dest, sha256=_sha(data))
    assert open(dest, "rb").read() == data
    assert hosts.requests == [("/files/a.pt", "bytes=34-")]


def test_complete_part_is_not_downloaded_again(hosts, tmp_path):
    hosts.files["a.pt"] = data = _torch_bytes(5)
    dest = str(tmp_path / "a.pt")
    with open(dest + ".part", "wb") as fh:
        fh.write(data)                  # a run stopped between the last byte and the rename
    fetch.download(f"{hosts.base}/files/a.pt", dest, sha256=_sha(data))
    assert open(dest, "rb").read() == data


def test_bad_checksum_names_file_expected_and_got_and_leaves_nothing(hosts, tmp_path):
    hosts.files["a.pt"] = data = _torch_bytes(6)
    dest = str(tmp_path / "a.pt")
    with pytest.raises(FetchError) as err:
        fetch.download(f"{hosts.base}/files/a.pt", dest, sha256="0" * 64)
    message = str(err.value)
    assert "sha256 mismatch" in message and dest in message and "0" * 64 in message and _sha(data) in message
    _no_leftovers(dest)


def test_web_page_instead_of_file_is_refused(hosts, tmp_path):
    hosts.files["a.pt"] = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"
    dest = str(tmp_path / "a.pt")
    with pytest.raises(FetchError, match=r"web page \(HTML\)"):
        fetch.download(f"{hosts.base}/files/a.pt", dest)
    _no_leftovers(dest)
    hosts.files["b.pt"] = os.urandom(5000)
    with pytest.raises(FetchError, match=r"neither a torch checkpoint"):
        fetch.download(f"{hosts.base}/files/b.pt", str(tmp_path / "b.pt"))
    with pytest.raises(FetchError, match=r"HTTP 404"):
        fetch.download(f"{hosts.base}/files/missing.pt", str(tmp_path / "c.pt"))


def test_drive_confirmation_page_resumes_through_the_page(hosts, tmp_path):
    hosts.drive["ID123"] = data = _torch_bytes(7)
    hosts.cut_once.add("ID123")
    dest = str(tmp_path / "a.pt")
    fetch.download(f"{hosts.base}/uc?id=ID123&export=download&confirm=t", dest, sha256=_sha(data), backoff=0)
    assert open(dest, "rb").read() == data
    served = [(p, r) for p, r in hosts.requests if "uuid=" in p]
    assert [r for _, r in served] == [None, f"bytes={len(data) // 2}-"]     # the resumed request passed the page


def test_drive_quota_page_is_a_clear_error(hosts, tmp_path):
    dest = str(tmp_path / "a.pt")
    with pytest.raises(FetchError, match=r"web page \('Google Drive - Quota exceeded'\).*quota"):
        fetch.download(f"{hosts.base}/uc?id=NOPE&export=download&confirm=t", dest)
    _no_leftovers(dest)


def test_without_accepting_licences_nothing_is_downloaded(hosts, tmp_path, capsys):
    assert _run("--base-url", hosts.base) == 2
    out, err = capsys.readouterr()
    assert "AGPL-3.0" in out and "smplify.is.tue.mpg.de" in out and "--accept-licences" in err
    assert hosts.requests == []
    assert not os.path.exists(tmp_path / "home")


def test_fetch_from_drive_and_github_then_found_by_official_paths(hosts, tmp_path, capsys):
    wham = next(e for e in fetch.OFFICIAL if e.name == "wham-3dpw")
    assert wham.sha256 is None          # the one WHAM file with no known sha256: its format is checked
    hosts.drive[wham.ref] = wham_bytes = _torch_bytes(8)
    hosts.files["yolov8x.pt"] = yolo_bytes = _torch_bytes(9)
    assert _run("--accept-licences", "--only", "wham-3dpw,yolov8x", "--base-url", hosts.base) == 0
    found = fetch.official_paths()
    folder = str(tmp_path / "home" / "official")
    assert found == {"wham-3dpw": os.path.join(folder, "checkpoints", "wham_vit_w_3dpw.pth.tar"),
                     "yolov8x": os.path.join(folder, "checkpoints", "yolov8x.pt")}
    assert open(found["wham-3dpw"], "rb").read() == wham_bytes
    assert open(found["yolov8x"], "rb").read() == yolo_bytes
    assert any(p.startswith("/download?") and "uuid=" in p for p, _ in hosts.requests)    # went through the page
    assert any(p == GITHUB_YOLO for p, _ in hosts.requests)
    capsys.readouterr()
    count = len(hosts.requests)
    assert _run("--accept-licences", "--only", "yolov8x", "--base-url", hosts.base) == 0
    assert "already there" in capsys.readouterr().out and len(hosts.requests) == count
    assert _run("--list") == 0
    listing = capsys.readouterr().out
    assert "yolo_checkpoint: " + found["yolov8x"] in listing
    assert any(line.split()[:2] == ["hmr2a", "missing"] for line in listing.splitlines())


def test_base_url_from_the_environment_and_failures_exit_nonzero(hosts, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(fetch.BASE_URL_ENV, hosts.base)
    assert fetch.source_bases() == {"gdrive": hosts.base, "github": hosts.base}
    monkeypatch.setenv(fetch.SOURCE_URL_ENV["github"], "http://mirror.invalid")
    assert fetch.source_bases()["github"] == "http://mirror.invalid"
    assert fetch.source_bases(hosts.base)["github"] == hosts.base       # --base-url wins
    dest = tmp_path / "elsewhere"
    assert _run("--accept-licences", "--only", "hmr2a", "--dest", str(dest)) == 1   # no such id on the fake Drive
    assert "hmr2a" in capsys.readouterr().err
    assert not os.path.exists(dest / "checkpoints" / "hmr2a.ckpt")


def test_unknown_only_name_is_refused(hosts, capsys):
    assert _run("--accept-licences", "--only", "wham,nope") == 2
    assert "nope" in capsys.readouterr().err and hosts.requests == []


def _regressor_archive(body_dir: str, tmp_path) -> bytes:
    path = tmp_path / "body_models.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in ("J_regressor_wham.npy", "J_regressor_h36m.npy", "J_regressor_feet.npy"):
            tar.add(os.path.join(body_dir, name), arcname=f"body_models/{name}")
        tar.add(os.path.join(body_dir, "smpl", "SMPL_NEUTRAL.pkl"), arcname="body_models/smpl/SMPL_NEUTRAL.pkl")
    return path.read_bytes()


def test_regressors_and_smpl_make_a_body_model_folder(hosts, tmp_path, monkeypatch, synthetic_body_dir):
    from wham_ros.model.body_model import load_body_model

    archive = _regressor_archive(synthetic_body_dir, tmp_path)
    table = tuple(dataclasses.replace(e, sha256=_sha(archive)) if e.name == "regressors" else e
                  for e in fetch.OFFICIAL)
    monkeypatch.setattr(fetch, "OFFICIAL", table)
    hosts.drive[next(e.ref for e in table if e.name == "regressors")] = archive
    smpl = os.path.join(synthetic_body_dir, "smpl", "SMPL_NEUTRAL.pkl")
    assert _run("--accept-licences", "--only", "regressors", "--smpl", smpl, "--base-url", hosts.base) == 0
    found = fetch.official_paths()
    body = found["body_models"]
    assert sorted(os.listdir(body)) == ["J_regressor_feet.npy", "J_regressor_h36m.npy", "J_regressor_wham.npy",
                                        "smpl"]
    assert open(found["smpl"], "rb").read() == open(smpl, "rb").read()    # the user's file, not the archive's
    assert not os.listdir(os.path.join(fetch.official_dir(), "downloads"))  # archive deleted after extraction
    assert load_body_model(body).num_vertices == 6890


def _hostile_pickle(marker: str) -> bytes:
    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    return pickle.dumps({"v_template": Payload()}, protocol=2)


def test_smpl_install_accepts_the_smplify_zip_and_refuses_garbage(hosts, tmp_path, synthetic_body_dir, capsys):
    smpl = os.path.join(synthetic_body_dir, "smpl", "SMPL_NEUTRAL.pkl")
    zipped = tmp_path / "mpips_smplify_public_v2.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("smplify_public/README.txt", "readme")
        zf.write(smpl, "smplify_public/code/models/basicModel_neutral_lbs_10_207_0_v1.0.0.pkl")
    assert _run("--smpl", str(zipped)) == 0              # installing downloads nothing and needs no acceptance
    target = os.path.join(fetch.official_dir(), fetch.SMPL_PATH)
    good = open(smpl, "rb").read()
    assert open(target, "rb").read() == good and hosts.requests == []
    marker = str(tmp_path / "pwned")
    hostile, garbage = tmp_path / "hostile.pkl", tmp_path / "garbage.pkl"
    hostile.write_bytes(_hostile_pickle(marker))
    garbage.write_bytes(os.urandom(4096))
    capsys.readouterr()
    for bad, why in ((hostile, "refused global posix.system"), (garbage, "not an SMPL model")):
        assert _run("--smpl", str(bad)) == 1
        assert why in capsys.readouterr().err
        assert open(target, "rb").read() == good and not os.path.exists(target + ".part")
    assert not os.path.exists(marker)
    with pytest.raises(FetchError, match="no SMPL neutral model in the zip"):
        with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
            zf.writestr("readme.txt", "x")
        fetch.install_smpl(str(tmp_path / "other.zip"), str(tmp_path / "dest"))
    with pytest.raises(BodyModelError, match=r"has 12 vertices"):
        small = {"v_template": np.zeros((12, 3)), "shapedirs": np.zeros((12, 3, 10)),
                 "posedirs": np.zeros((12, 3, 207)), "J_regressor": np.zeros((24, 12)), "weights": np.zeros((12, 24)),
                 "kintree_table": np.zeros((2, 24), dtype=np.int64), "f": np.zeros((4, 3), dtype=np.int64)}
        (tmp_path / "small.pkl").write_bytes(pickle.dumps(small))
        fetch.install_smpl(str(tmp_path / "small.pkl"), str(tmp_path / "dest"))


def test_archive_members_that_are_links_or_misshaped_install_nothing(tmp_path):
    members = (("J_regressor_wham.npy", "body_models/J_regressor_wham.npy"),
               ("J_regressor_feet.npy", "body_models/J_regressor_feet.npy"))
    link = tmp_path / "link.tar.gz"
    with tarfile.open(link, "w:gz") as tar:
        info = tarfile.TarInfo("body_models/J_regressor_wham.npy")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(FetchError, match="not a regular file"):
        fetch.extract_members(str(link), str(tmp_path / "out"), members)
    shaped = tmp_path / "shaped.tar.gz"
    with tarfile.open(shaped, "w:gz") as tar:
        for name, rows in (("J_regressor_wham.npy", 31), ("J_regressor_feet.npy", 5)):
            buf = io.BytesIO()
            np.save(buf, np.zeros((rows, 6890)))
            info = tarfile.TarInfo(f"x/{name}")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
    with pytest.raises(FetchError, match=r"J_regressor_feet.npy has shape \(5, 6890\)"):
        fetch.extract_members(str(shaped), str(tmp_path / "out"), members)
    assert not os.path.exists(tmp_path / "out")

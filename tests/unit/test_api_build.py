"""``POST /build``: the context unpacked and removed, the query as build options, the
builder's lines as docker's progress stream."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

import pytest

from rctlbase.errors import UsageError
from rootless.api.build import build, docker_step
from rootless.api.http import NotServed, Request, Stream
from rootless.build import upload as build_upload
from rootless.build.builder import BuildFailed
from rootless.build.upload import ContextTooLarge, build_context
from rootless.models import BuildOptions


class Image:
    id = "sha256:" + "ab" * 32


class Paths:
    def __init__(self, data: Path) -> None:
        self.data = data

    def ensure_data(self) -> Path:
        self.data.mkdir(exist_ok=True)
        return self.data


class FakeEngine:
    def __init__(self, data: Path, fail: bool = False) -> None:
        self.paths = Paths(data)
        self.fail = fail
        self.options: list[BuildOptions] = []
        self.seen: dict[str, bytes] = {}

    def build_context(
        self, upload: IO[bytes], what: str = "the build context"
    ) -> contextlib.AbstractContextManager[Path]:
        return build_context(upload, self.paths.ensure_data(), what)

    def build(
        self, options: BuildOptions, say: Callable[[str], None], stdio: tuple[int, int, int]
    ) -> Image:
        self.options.append(options)
        context = Path(options.context)
        for path in context.rglob("*"):
            if path.is_file():
                self.seen[str(path.relative_to(context))] = path.read_bytes()
        say("STEP 1/2: FROM busybox")
        say("--> 0123456789ab")
        say("STEP 2/2: RUN echo from-run")
        os.write(stdio[1], b"from-run\n")
        if self.fail:
            raise BuildFailed("step 'RUN false' (line 2) exited with status 1")
        return Image()


class FakeApi:
    def __init__(self, eng: FakeEngine) -> None:
        self.eng = eng

    def engine(self) -> FakeEngine:
        return self.eng


def context_tar(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    return out.getvalue()


def run(eng: FakeEngine, body: bytes, **query: str | tuple[str, ...]) -> list[dict[str, Any]]:
    request = Request(
        "POST", "/build",
        query={k: v if isinstance(v, tuple) else (v,) for k, v in query.items()},
        upload=io.BytesIO(body),
    )  # fmt: skip
    reply = build(cast(Any, FakeApi(eng)), request)
    assert isinstance(reply, Stream)
    return [json.loads(chunk) for chunk in reply.chunks]


DOCKERFILE = {"Dockerfile": b"FROM busybox\nRUN echo from-run\n", "data/f": b"x"}


def test_stream_is_dockers_and_the_context_is_removed(tmp_path: Path) -> None:
    eng = FakeEngine(tmp_path / "data")
    lines = run(eng, context_tar(DOCKERFILE), t=("a:1", "b"), buildargs='{"A": "1", "B": null}',
                labels='{"L": "v"}', nocache="1", pull="true", target="final", rm="1")  # fmt: skip
    streamed = "".join(line.get("stream", "") for line in lines)
    assert "Step 1/2 : FROM busybox\n ---> 0123456789ab\nStep 2/2 : RUN echo from-run\n" in streamed
    assert "from-run\n" in streamed
    assert {"aux": {"ID": Image.id}} in lines
    assert streamed.endswith(
        f"Successfully built {'ab' * 6}\nSuccessfully tagged a:1\nSuccessfully tagged b\n"
    )
    assert eng.seen == {"Dockerfile": DOCKERFILE["Dockerfile"], "data/f": b"x"}
    (options,) = eng.options
    assert options.tags == ("a:1", "b")
    assert options.build_args == ("A=1",)
    assert options.labels == ("L=v",)
    assert (options.no_cache, options.pull, options.target) == (True, "always", "final")
    assert list((tmp_path / "data").iterdir()) == []


def test_quiet_sends_the_id_alone(tmp_path: Path) -> None:
    lines = run(FakeEngine(tmp_path), context_tar(DOCKERFILE), q="1")
    assert lines == [{"aux": {"ID": Image.id}}, {"stream": f"{Image.id}\n"}]


def test_failed_step_is_an_error_line_and_the_context_is_removed(tmp_path: Path) -> None:
    lines = run(FakeEngine(tmp_path / "data", fail=True), context_tar(DOCKERFILE))
    assert "exited with status 1" in lines[-1]["error"]
    assert lines[-1]["errorDetail"]["message"] == lines[-1]["error"]
    assert list((tmp_path / "data").iterdir()) == []


def test_gzip_context_and_dockerfile_parameter(tmp_path: Path) -> None:
    eng = FakeEngine(tmp_path)
    body = gzip.compress(context_tar({"sub/Build.file": b"FROM busybox\n"}))
    run(eng, body, dockerfile="sub/Build.file")
    assert eng.options[0].dockerfile is not None
    assert eng.options[0].dockerfile.endswith("/sub/Build.file")
    assert eng.seen == {"sub/Build.file": b"FROM busybox\n"}


@pytest.mark.parametrize("name", ["../Dockerfile", "/etc/passwd", "a/../../x"])
def test_dockerfile_outside_the_context_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError, match="inside the build context"):
        run(FakeEngine(tmp_path / "data"), context_tar(DOCKERFILE), dockerfile=name)
    assert list((tmp_path / "data").iterdir()) == []


def test_dockerfile_link_out_of_the_context_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("FROM x\n")
    body = context_tar({}, {"Dockerfile": str(secret)})
    with pytest.raises(UsageError, match="leads out of the build context"):
        run(FakeEngine(tmp_path / "data"), body, dockerfile="Dockerfile")


def test_unsafe_entry_is_refused_and_nothing_lands_outside(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unsafe"):
        run(FakeEngine(tmp_path / "data"), context_tar({"../escaped": b"x"}))
    assert not (tmp_path / "escaped").exists()
    assert list((tmp_path / "data").iterdir()) == []


def test_oversized_context_is_413(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_upload, "MAX_CONTEXT", 4096)
    body = gzip.compress(context_tar({"big": b"\0" * 100_000}))
    with pytest.raises(ContextTooLarge) as caught:
        run(FakeEngine(tmp_path / "data"), body)
    assert caught.value.http_status == 413
    assert list((tmp_path / "data").iterdir()) == []


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"buildargs": "[1]"}, UsageError),
        ({"labels": '{"a": 1}'}, UsageError),
        ({"networkmode": "bridge0"}, UsageError),
        ({"nocache": "maybe"}, UsageError),
        ({"remote": "https://example.invalid/ctx.tar"}, NotServed),
    ],
)
def test_bad_query_is_refused(tmp_path: Path, query: dict[str, str], error: type) -> None:
    with pytest.raises(error):
        run(FakeEngine(tmp_path / "data"), context_tar(DOCKERFILE), **query)
    assert list((tmp_path / "data").iterdir()) == []


def test_not_a_tar_is_400(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        run(FakeEngine(tmp_path / "data"), gzip.compress(b"not a tar at all" * 100))


def test_docker_step_wording() -> None:
    assert docker_step("[1/2] STEP 3/5: COPY . /") == "Step 3/5 : COPY . /\n"
    assert docker_step("--> Using cache abc") == " ---> Using cache abc\n"
    assert docker_step("plain") == "plain\n"


def test_context_entries_are_the_users_own(tmp_path: Path) -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.uid, info.gid, info.size = 4242, 4243, 5
        tar.addfile(info, io.BytesIO(b"FROM\n"))
    out.seek(0)
    data = tmp_path / "data"
    data.mkdir()
    with build_context(out, data) as context:
        owner = (context / "Dockerfile").stat()
        assert (owner.st_uid, owner.st_gid) == (os.getuid(), os.getgid())
    assert list(data.iterdir()) == []

"""``rctl build``: the steps of a Dockerfile's needed stages, each an image in the store.

Every step makes an image over the previous one, as docker's classic builder does, so a
step's result is what the cache remembers (:mod:`rootless.build.cache`, keyed by
:func:`rootless.build.plan.cache_key`):

- RUN runs as a container of the current image, through the same container service as
  ``rctl run`` (same user namespace mapping, storage driver, seccomp and capabilities,
  network, unit limits); its r/w layer becomes the step's layer as ``rctl commit`` makes
  it, and the container is removed whatever happens (also on Ctrl-C);
- COPY and ADD write their layer directly from the context (:mod:`rootless.build.sources`);
- WORKDIR adds a layer with the directory when the image lacks it;
- the other instructions change the config only (an ``empty_layer`` history entry).

Step lines follow podman's plain output (``STEP 3/7: RUN …``, ``--> Using cache …``,
``--> ID``); a step's own output goes to the descriptors given.
"""

from __future__ import annotations

import datetime
import json
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rctlbase.errors import CommandNotRunnable, RctlError, UsageError
from rctlbase.timeline import mark
from rootless.build import cache as build_cache
from rootless.build import fetch, sources
from rootless.build.dockerfile import Dockerfile, Instruction, Stage, check_onbuild
from rootless.build.ignore import IgnoreRules
from rootless.build.instructions import (
    DEFAULT_PATH,
    PROXY_ARGS,
    StageVars,
    apply_arg,
    apply_config,
    command_of,
    lookup,
)
from rootless.build.mounts import parse_secrets, plan_mounts
from rootless.build.plan import cache_key, plan_stages, stage_by_ref
from rootless.build.shellwords import expand_word, expand_words
from rootless.build.staging import StagedLayer
from rootless.build.statcache import NotKnown, StatDigests
from rootless.images.store import ImageRecord
from rootless.models import BuildOptions, RunOptions

_BARE_HEREDOC = re.compile(r"<<-?(['\"]?)[A-Za-z_][A-Za-z0-9_.-]*\1")


class BuildFailed(RctlError):
    """A step of a build failed (its command's exit status, or what it could not do)."""

    exit_code = 1  # docker build's status for a failed build; 125 stays for bad usage
    default_hint = "fix the step shown above and build again (steps before it are cached)"


@dataclass(frozen=True, slots=True)
class BuildHost:
    """What the builder asks of the engine."""

    resolve_image: Callable[[str, str], ImageRecord]  # name, --pull policy
    image_config: Callable[[ImageRecord], dict[str, Any]]  # the config document
    # parent, config, the layer tar if any, its tree if a job unpacked it already
    make_image: Callable[
        [ImageRecord | None, dict[str, Any], Path | None, StagedLayer | None], ImageRecord
    ]
    run_step: Callable[[RunOptions], tuple[str, int]]  # container id, exit code
    # container id, where the layer tar goes, new paths left out (mount points)
    commit_layer: Callable[[str, Path, tuple[str, ...]], StagedLayer | None]
    remove_container: Callable[[str], None]
    has_dir: Callable[[ImageRecord, str], bool]  # a directory at that image path
    layer_tmp: Callable[[], Path]
    cache: build_cache.BuildCache
    exists: Callable[[str], ImageRecord | None]  # an image by ID, if still stored
    architecture: str  # of images from scratch
    # source image, request, where the tar goes, the image it lands on
    export: Callable[[ImageRecord, ExportRequest, Path, ImageRecord], StagedLayer | None]
    cache_mounts: Path  # RUN --mount=type=cache directories
    user_files: Callable[[ImageRecord], tuple[str | None, str | None]]  # /etc/passwd, group
    digests_file: Path | None  # the stat cache of context files' digests


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """COPY --from's sources and where they go (see :mod:`rootless.build.export`)."""

    paths: tuple[str, ...]
    dest: str
    workdir: str
    chmod: int | None
    owner: sources.Owner
    dest_is_dir: bool


@dataclass(slots=True)
class _State:
    image: ImageRecord
    doc: dict[str, Any]
    vars: StageVars = field(default_factory=StageVars)

    @property
    def config(self) -> dict[str, Any]:
        section = self.doc.get("config")
        if not isinstance(section, dict):
            section = self.doc["config"] = {}
        return section


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Builder:
    """One build; :meth:`build` returns the target stage's final image."""

    def __init__(
        self, host: BuildHost, options: BuildOptions, dockerfile: Dockerfile, context: Path,
        rules: IgnoreRules, say: Callable[[str], None],
    ) -> None:  # fmt: skip
        self.host = host
        self.options = options
        self.file = dockerfile
        self.context = context
        self.rules = rules
        self.say = say
        self.build_args = dict(arg.partition("=")[::2] for arg in options.build_args)
        self.used_args: set[str] = set()
        self.meta = self._meta_args()
        self.results: dict[int, ImageRecord] = {}
        self.stage_index = 0
        self.secrets = parse_secrets(options.secrets)
        self.digests = StatDigests(host.digests_file)

    def _meta_args(self) -> dict[str, str]:
        vars_ = StageVars()
        for instruction in self.file.meta_args:
            apply_arg(instruction, vars_, dict(vars_.args), self.build_args, self.file.escape)
        self.used_args.update(vars_.args)
        return vars_.args

    def build(self) -> ImageRecord:
        stages = plan_stages(self.file, self.options.target, self.meta)
        total = sum(1 + len(stage.instructions) for stage in stages)
        number = 0
        final: ImageRecord | None = None
        for stage in stages:
            prefix = f"[{stage.index + 1}/{len(self.file.stages)}] " if len(stages) > 1 else ""
            number += 1
            self.say(f"{prefix}STEP {number}/{total}: FROM {stage.base}"
                     + (f" AS {stage.name}" if stage.name else ""))  # fmt: skip
            self.stage_index = stage.index
            state = self._from(stage)
            for trigger in self._triggers(state):
                self._step(state, trigger)
            for instruction in stage.instructions:
                number += 1
                self.say(f"{prefix}STEP {number}/{total}: {instruction.text}")
                self._step(state, instruction)
            self.results[stage.index] = state.image
            final = state.image
            self.digests.save()
        assert final is not None
        mark("build steps done")
        if self.options.labels:
            final = self._labels(final)
        unused = set(self.build_args) - self.used_args - PROXY_ARGS
        for name in sorted(unused):
            self.say(f"[Warning] one or more build args were not consumed: {name}")
        return final

    # -- stages ------------------------------------------------------------------------

    def _from(self, stage: Stage) -> _State:
        base = expand_word(stage.base, self.meta, self.file.escape)
        earlier = stage_by_ref(self.file, base, stage.index)
        if earlier is not None:
            image = self.results[earlier.index]
        elif base == "scratch":
            doc: dict[str, Any] = {
                "architecture": self.host.architecture, "os": "linux",
                "config": {"Env": [DEFAULT_PATH]},
                "rootfs": {"type": "layers", "diff_ids": []}, "history": [],
            }  # fmt: skip
            return _State(self._cached_image(None, "FROM scratch", {}, "", doc, None), doc)
        else:
            image = self.host.resolve_image(base, self.options.pull)
        return _State(image, self.host.image_config(image))

    def _triggers(self, state: _State) -> list[Instruction]:
        """The base image's ONBUILD instructions, run first (and not inherited)."""
        triggers = state.config.pop("OnBuild", None) or []
        found = []
        for text in triggers:
            if not isinstance(text, str):
                continue
            trigger = check_onbuild(text, "ONBUILD of the base image", 0)
            self.say(f"--> Running ONBUILD trigger: {trigger.text}")
            found.append(trigger)
        return found

    # -- steps -------------------------------------------------------------------------

    def _step(self, state: _State, instruction: Instruction) -> None:
        keyword = instruction.keyword
        mark(f"build step {instruction.line} {keyword}")
        if keyword == "ARG":
            env = lookup(state.config, state.vars)
            apply_arg(instruction, state.vars, env, self.build_args, self.file.escape)
            self.used_args.update(state.vars.args)
            return
        if keyword == "RUN":
            self._run(state, instruction)
        elif keyword in ("COPY", "ADD"):
            self._copy(state, instruction)
        elif keyword == "MAINTAINER":
            state.doc["author"] = instruction.args
            self._config_step(state, f"MAINTAINER {instruction.args}")
        else:
            text = apply_config(instruction, state.config, state.vars, self.file.escape)
            if keyword == "WORKDIR":
                self._workdir(state, text)
            else:
                self._config_step(state, text)
        self.say(f"--> {state.image.short_id}")

    def _history(self, state: _State, text: str, *, empty: bool) -> None:
        entry: dict[str, Any] = {"created": _now(), "created_by": text}
        if empty:
            entry["empty_layer"] = True
        state.doc["history"] = [*(state.doc.get("history") or []), entry]
        state.doc["created"] = entry["created"]

    def _config_step(self, state: _State, text: str) -> None:
        self._history(state, text, empty=True)
        self._adopt(state, self._cached_image(state.image, text, {}, "", state.doc, None))

    def _cached_image(
        self, parent: ImageRecord | None, text: str, args: dict[str, str], content: str,
        doc: dict[str, Any], layer: Path | None,
    ) -> ImageRecord:  # fmt: skip
        """The step's image from the cache, else made from ``doc`` (and ``layer``)."""
        key = cache_key(parent.id if parent else "", text, args, content)
        hit = self._lookup(key)
        if hit is not None:
            return hit
        image = self.host.make_image(parent, doc, layer, None)
        self.host.cache.remember(key, image.id)
        return image

    def _lookup(self, key: str) -> ImageRecord | None:
        if self.options.no_cache:
            return None
        found = self.host.cache.get(key)
        image = self.host.exists(found) if found else None
        if image is not None:
            self.say(f"--> Using cache {image.id.removeprefix('sha256:')}")
        return image

    def _adopt(self, state: _State, image: ImageRecord) -> None:
        state.image = image
        config_cmd = state.vars.config_cmd_from_stage
        state.doc = self.host.image_config(image)
        state.vars.config_cmd_from_stage = config_cmd

    def _workdir(self, state: _State, text: str) -> None:
        path = str(state.config["WorkingDir"])
        if self.host.has_dir(state.image, path):
            self._config_step(state, text)
            return
        entry = sources.CopyEntry(path.lstrip("/"), "dir", 0o755)

        def write(out: Any) -> str:
            sources.write_layer([entry], sources.Owner(), out)
            return sources.checksum([entry], sources.Owner())

        self._layer_step(state, text, {}, write)

    def _layer_step(
        self, state: _State, text: str, args: dict[str, str], write: Callable[[Any], str]
    ) -> None:
        """A step whose layer ``write`` makes (returning its checksum) before the cache
        is asked: a file's content is read once, for both."""
        tar = self.host.layer_tmp()
        try:
            with open(tar, "wb") as out:
                content = write(out)
            mark("build layer written")
            key = cache_key(state.image.id, text, args, content)
            hit = self._lookup(key)
            if hit is not None:
                self._adopt(state, hit)
                return
            self._history(state, text, empty=False)
            image = self.host.make_image(state.image, state.doc, tar, None)
        finally:
            tar.unlink(missing_ok=True)
        self.host.cache.remember(key, image.id)
        self._adopt(state, image)

    def _run(self, state: _State, instruction: Instruction) -> None:
        argv = self._run_argv(state, instruction)
        args = {k: v for k, v in state.vars.args.items()}
        args.update({k: v for k, v in self.build_args.items() if k in PROXY_ARGS})
        text = f"RUN {json.dumps(argv)}" if instruction.exec_form() else f"RUN {argv[-1]}"
        step_mounts = plan_mounts(
            instruction.flag_values("mount"), self.context, self.host.cache_mounts,
            self.secrets, str(state.config.get("WorkingDir") or "/"),
        )  # fmt: skip
        key = cache_key(state.image.id, text, args, step_mounts.key)
        hit = self._lookup(key)
        if hit is not None:
            self._adopt(state, hit)
            return
        network = instruction.flag("network") or self.options.network
        options = RunOptions(
            image=state.image.id,
            command=tuple(argv),
            entrypoint="",
            env=tuple(f"{k}={v}" for k, v in args.items()),
            network=network,
            pull="never",
            no_healthcheck=True,
            mounts=step_mounts.mounts,
            tmpfs=step_mounts.tmpfs,
        )
        try:
            container, code = self.host.run_step(options)
            mark("build run step ended")
        except CommandNotRunnable as exc:  # the program is not in the image: docker's 1
            raise BuildFailed(
                f"step {instruction.text!r} (line {instruction.line}): {exc.message}",
                hint=exc.hint,
            ) from exc
        try:
            if code != 0:
                raise BuildFailed(
                    f"step {instruction.text!r} (line {instruction.line}) exited with status {code}"
                )
            tar = self.host.layer_tmp()
            try:
                staged = self.host.commit_layer(container, tar, step_mounts.targets)
                mark("build run layer read")
                self._history(state, text, empty=False)
                image = self.host.make_image(state.image, state.doc, tar, staged)
            finally:
                tar.unlink(missing_ok=True)
        finally:
            self.host.remove_container(container)
        self.host.cache.remember(key, image.id)
        self._adopt(state, image)

    def _run_argv(self, state: _State, instruction: Instruction) -> list[str]:
        if not instruction.heredocs:
            return command_of(instruction, state.config)
        shell = list(state.config.get("Shell") or ["/bin/sh", "-c"])
        if _BARE_HEREDOC.fullmatch(instruction.args.strip()) and len(instruction.heredocs) == 1:
            return [*shell, instruction.heredocs[0].body]
        script = (
            instruction.args
            + "\n"
            + "".join(f"{doc.body}{doc.name}\n" for doc in instruction.heredocs)
        )
        return [*shell, script]

    def _copy(self, state: _State, instruction: Instruction) -> None:
        keyword = instruction.keyword
        env = lookup(state.config, state.vars)
        refused = ["parents", "exclude", "keep-git-dir"]
        if keyword == "COPY":
            refused.append("checksum")
        for flag in refused:
            if instruction.flag(flag) is not None:
                raise UsageError(
                    f"line {instruction.line}: {keyword} --{flag} is not supported by rctl",
                    hint=f"write the {keyword} without --{flag}",
                )
        chown = expand_word(instruction.flag("chown") or "", env, self.file.escape) or None
        by_name = chown is not None and not re.fullmatch(r"[0-9]+(:[0-9]+)?", chown)
        owner = sources.parse_chown(chown, self._passwd(state) if by_name else None)
        chmod = sources.parse_chmod(instruction.flag("chmod"))
        workdir = str(state.config.get("WorkingDir") or "/")
        form = instruction.exec_form()
        words = form if form is not None else expand_words(instruction.args, env, self.file.escape)
        if len(words) < 2:
            raise UsageError(
                f"line {instruction.line}: {keyword} needs a source and a destination",
                hint=f"{keyword} SOURCE... DEST",
            )
        *srcs, dest = words
        text = f"{keyword} {' '.join(words)}"
        urls = keyword == "ADD" and not instruction.heredocs and any(map(fetch.is_url, srcs))
        if keyword == "ADD" and not instruction.heredocs:
            self._check_add(instruction, srcs, urls)
        source = instruction.flag("from")
        if source:
            self._copy_from(state, instruction, source, text, (srcs, dest), owner, chmod)
            return
        if urls:
            self._add_urls(state, instruction, text, (srcs, dest), owner, chmod)
            return
        image = state.image

        def write(out: Any, stat_only: bool = False) -> str:
            if instruction.heredocs:
                entries = self._heredoc_entries(instruction, srcs, dest, workdir, chmod, env)
                sources.write_layer(entries, owner, out)
            else:
                entries = sources.plan_copy(
                    self.context, srcs, dest, workdir, self.rules, chmod=chmod,
                    is_dir=lambda path: self.host.has_dir(image, "/" + path),
                    owner=owner if chown else None, out=out, extract=keyword == "ADD",
                    known=self.digests, stat_only=stat_only,
                )  # fmt: skip
            return sources.checksum(entries, owner)

        if not instruction.heredocs and self._cached_by_stat(state, text, write):
            return
        self._layer_step(state, text, {}, write)

    def _cached_by_stat(self, state: _State, text: str, write: Callable[..., str]) -> bool:
        """A COPY whose sources all have known digests (:mod:`rootless.build.statcache`)
        is looked up without reading them; False when that cannot decide (then the layer
        is written and hashed in one pass)."""
        if self.options.no_cache:
            return False
        try:
            content = write(None, stat_only=True)
        except NotKnown:
            return False
        hit = self._lookup(cache_key(state.image.id, text, {}, content))
        if hit is not None:
            self._adopt(state, hit)
        return hit is not None

    def _passwd(self, state: _State) -> sources.IdFiles:
        """The stage's /etc/passwd and /etc/group, for ``--chown`` by name."""
        return sources.IdFiles(*self.host.user_files(state.image))

    def _add_urls(
        self, state: _State, instruction: Instruction, text: str, paths: tuple[list[str], str],
        owner: sources.Owner, chmod: int | None,
    ) -> None:  # fmt: skip
        """ADD URL... DEST: each file downloaded (never extracted), mode 0600 as docker's."""
        srcs, dest = paths
        checksum = instruction.flag("checksum")
        expected = fetch.check_checksum(checksum) if checksum is not None else None
        workdir = str(state.config.get("WorkingDir") or "/")
        target = sources.absolute_dest(dest, workdir)
        into = dest.endswith("/") or len(srcs) > 1 or self.host.has_dir(state.image, "/" + target)
        with tempfile.TemporaryDirectory(dir=self.host.layer_tmp().parent) as tmp:
            got = []
            for number, url in enumerate(srcs):
                self.say(f"--> Downloading {url}")
                got.append(fetch.download(url, Path(tmp) / str(number), checksum=expected))

            def write(out: Any) -> str:
                entries = []
                for item in got:
                    where = f"{target}/{item.name}".lstrip("/") if into else target
                    entries.append(sources.CopyEntry(
                        where, "file", 0o600 if chmod is None else chmod, item.size,
                        item.mtime, digest=item.digest.removeprefix("sha256:"),
                    ))  # fmt: skip
                sources.write_files(entries, [item.path for item in got], owner, out)
                return sources.checksum(entries, owner)

            self._layer_step(state, text, {}, write)

    def _copy_from(
        self, state: _State, instruction: Instruction, ref: str, text: str,
        paths: tuple[list[str], str], owner: sources.Owner, chmod: int | None,
    ) -> None:  # fmt: skip
        """COPY --from=STAGE|IMAGE. An image never changes under its ID, so the source
        image's ID stands for the content in the cache key: a hit reads nothing."""
        name = expand_word(ref, self.meta, self.file.escape)
        stage = stage_by_ref(self.file, name, self.stage_index)
        image = (
            self.results[stage.index]
            if stage is not None
            else self.host.resolve_image(name, self.options.pull)
        )
        srcs, dest = paths
        workdir = str(state.config.get("WorkingDir") or "/")
        target = sources.absolute_dest(dest, workdir)
        request = ExportRequest(
            # Paths in an image are from its root: /out means out.
            paths=tuple(sources.check_source(src.lstrip("/") or ".") for src in srcs),
            dest=dest,
            workdir=workdir, chmod=chmod, owner=owner,
            dest_is_dir=self.host.has_dir(state.image, "/" + target),
        )  # fmt: skip
        text = f"{text} (from {image.id})"
        key = cache_key(state.image.id, text, {}, f"{owner.uid}:{owner.gid}:{chmod}:{workdir}")
        hit = self._lookup(key)
        if hit is not None:
            self._adopt(state, hit)
            return
        tar = self.host.layer_tmp()
        try:
            staged = self.host.export(image, request, tar, state.image)
            self._history(state, text, empty=False)
            made = self.host.make_image(state.image, state.doc, tar, staged)
        finally:
            tar.unlink(missing_ok=True)
        self.host.cache.remember(key, made.id)
        self._adopt(state, made)

    def _heredoc_entries(
        self, instruction: Instruction, srcs: list[str], dest: str, workdir: str,
        chmod: int | None, env: dict[str, str],
    ) -> list[sources.CopyEntry]:  # fmt: skip
        docs = {doc.name: doc for doc in instruction.heredocs}
        entries = []
        for src in srcs:
            name = _BARE_HEREDOC.fullmatch(src)
            doc = docs.get(src.lstrip("<-").strip("'\"")) if name else None
            if doc is None:
                raise UsageError(
                    f"line {instruction.line}: mixing here-documents and files in one "
                    f"{instruction.keyword} is not supported",
                    hint="use one COPY per kind of source",
                )
            body = expand_word(doc.body, env, self.file.escape) if doc.expand else doc.body
            target = dest if len(srcs) == 1 and not dest.endswith("/") else f"{dest}/{doc.name}"
            entries.append(sources.heredoc_entry(target, workdir, body.encode(), chmod))
        return entries

    def _check_add(self, instruction: Instruction, srcs: list[str], urls: bool) -> None:
        if instruction.flag("checksum") is not None and not urls:
            raise UsageError(
                f"line {instruction.line}: --checksum is for ADD of URLs",
                hint="write the ADD without its checksum, or ADD the file from its URL",
            )
        if not urls:
            for src in srcs:
                if "://" in src or src.startswith("git@"):
                    raise UsageError(
                        f"line {instruction.line}: ADD of {src}: only http and https URLs "
                        "are fetched",
                        hint="fetch it in a RUN step (git clone, curl) instead",
                    )
            return
        if not all(map(fetch.is_url, srcs)) or instruction.flag("from"):
            raise UsageError(
                f"line {instruction.line}: mixing URLs and other sources in one ADD is not "
                "supported",
                hint="use one ADD for the URLs and another for the files",
            )
        for src in srcs:
            fetch.url_name(src)

    def _labels(self, image: ImageRecord) -> ImageRecord:
        doc = self.host.image_config(image)
        config = doc.setdefault("config", {})
        labels = config.get("Labels") or {}
        for label in self.options.labels:
            key, _, value = label.partition("=")
            labels[key] = value
        config["Labels"] = labels
        text = "LABEL " + " ".join(self.options.labels)
        entry = {"created": _now(), "created_by": text, "empty_layer": True}
        doc["history"] = [*(doc.get("history") or []), entry]
        return self._cached_image(image, text, {}, "", doc, None)

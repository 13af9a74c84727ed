"""The API's routing, framing, error seam and create-body translation (pure parts)."""

from __future__ import annotations

import json

import pytest

from rctlbase.errors import ConflictError, NotFoundError, RctlError, UsageError
from rootless.api.app import route_table
from rootless.api.framing import STDERR, STDOUT, frame, unframe
from rootless.api.http import NotServed, Reply, Request
from rootless.api.routes import Match, Router
from rootless.api.seam import error_reply, stream_error
from rootless.api.translate import run_options

ROUTER = Router(route_table())


def resolve(method: str, target: str) -> Match:
    found = ROUTER.resolve(method, target)
    assert isinstance(found, Match), found
    return found


def test_version_prefixes_are_taken_off_and_kept() -> None:
    found = resolve("GET", "/v1.41/containers/json?all=1")
    assert (found.path, found.version, found.query["all"]) == ("/containers/json", "1.41", ("1",))
    assert resolve("GET", "/containers/json").version == "1.44"
    assert resolve("GET", "/v1.44/_ping").path == "/_ping"


@pytest.mark.parametrize(
    ("target", "status", "said"),
    [
        ("/v1.45/info", 400, "too new"),
        ("/v1.12/info", 400, "too old"),
        ("/v1.41/nothing/here", 404, "not served by rctl"),
        ("nohost", 400, "malformed"),
    ],
)
def test_refused_targets(target: str, status: int, said: str) -> None:
    found = ROUTER.resolve("GET", target)
    assert isinstance(found, Reply)
    assert found.status == status
    assert said in json.loads(found.body)["message"]


def test_a_known_path_with_another_method_is_405() -> None:
    found = ROUTER.resolve("PUT", "/v1.41/containers/json")
    assert isinstance(found, Reply)
    assert found.status == 405


def test_head_is_served_by_get_routes() -> None:
    assert resolve("HEAD", "/v1.41/version").path == "/version"


def test_image_names_with_slashes_and_ports() -> None:
    found = resolve("GET", "/v1.41/images/127.0.0.1:5000/test/busybox:latest/json")
    assert found.params["name"] == "127.0.0.1:5000/test/busybox:latest"
    assert found.handler.__name__ == "inspect"
    assert resolve("GET", "/v1.41/images/json").handler.__name__ == "listing"
    found = resolve("DELETE", "/v1.41/images/a%2Fb:1")
    assert found.params["name"] == "a/b:1"


def test_uploads_are_marked() -> None:
    assert resolve("POST", "/v1.41/images/load").upload
    assert not resolve("POST", "/v1.41/containers/create").upload


def test_filters_in_both_of_dockers_shapes() -> None:
    new = Request("GET", "/", query={"filters": ('{"label": ["a=b"], "status": ["exited"]}',)})
    assert new.filters() == ("label=a=b", "status=exited")
    old = Request("GET", "/", query={"filters": ('{"dangling": {"true": true}}',)})
    assert old.filters() == ("dangling=true",)
    for bad in ("[1]", "{", '{"a": [1]}'):
        with pytest.raises(UsageError):
            Request("GET", "/", query={"filters": (bad,)}).filters()


def test_query_booleans_as_go_reads_them() -> None:
    request = Request("GET", "/", query={"a": ("1",), "b": ("false",), "c": ("yes",)})
    assert request.flag("a") is True
    assert request.flag("b") is False
    assert request.flag("missing", default=True) is True
    with pytest.raises(UsageError):
        request.flag("c")


def test_frames_carry_stream_and_length() -> None:
    data = frame(STDOUT, b"out\n") + frame(STDERR, b"err")
    assert data[:8] == b"\x01\x00\x00\x00\x00\x00\x00\x04"
    assert list(unframe(data)) == [(STDOUT, b"out\n"), (STDERR, b"err")]
    assert frame(STDOUT, b"") == b""
    with pytest.raises(ValueError, match="truncated"):
        list(unframe(data[:-1]))


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (UsageError("bad", hint="fix"), 400),
        (NotFoundError("No such container: x", hint="see ps"), 404),
        (ConflictError("in use", hint="stop it"), 409),
        (RctlError("host broke", hint="doctor"), 500),
        (NotServed("searching registries"), 501),
        (KeyError("bug"), 500),
    ],
)
def test_the_error_seam(error: BaseException, status: int) -> None:
    reply = error_reply(error)
    assert reply.status == status
    message = json.loads(reply.body)["message"]
    assert "\n" not in message
    if isinstance(error, RctlError):
        assert message.startswith(error.message)
        assert f"(hint: {error.hint})" in message
    else:
        assert message == "internal error: KeyError: 'bug'"


def test_stream_errors_escape_control_characters() -> None:
    line = stream_error(RctlError("bad\nname\x1b[31m", hint="h"))
    assert line["error"] == line["errorDetail"]["message"]  # type: ignore[index]
    assert "\n" not in str(line["error"]) and "\x1b" not in str(line["error"])


def test_translate_a_docker_cli_body() -> None:
    body = {
        "Image": "busybox",
        "Cmd": ["sh", "-c", "echo hi"],
        "Env": ["A=1"],
        "Labels": {"com.example": "x"},
        "OpenStdin": True,
        "Tty": False,
        "WorkingDir": "/srv",
        "User": "1000",
        "ExposedPorts": {"80/tcp": {}},
        "Volumes": {"/anon": {}},
        "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000, "Retries": 2},
        "HostConfig": {
            "Binds": ["data:/data:ro"],
            "PortBindings": {
                "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "", "HostPort": ""}],
                "443/tcp": None,
            },
            "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            "AutoRemove": True,
            "NetworkMode": "default",
            "Memory": 64 * 2**20,
            "NanoCpus": 1_500_000_000,
            "PidsLimit": 0,
            "Tmpfs": {"/run": "size=1m"},
            "Mounts": [{"Type": "volume", "Source": "v", "Target": "/v", "ReadOnly": True}],
            "CapAdd": ["NET_ADMIN"],
            "ExtraHosts": ["db:10.0.0.5"],
        },
    }
    options = run_options(body, "web")
    assert options.image == "busybox"
    assert options.name == "web"
    assert options.command == ("sh", "-c", "echo hi")
    assert options.entrypoint is None
    assert options.pull == "never"
    assert options.interactive and not options.tty and options.remove
    assert options.labels == ("com.example=x",)
    assert options.publish == ("127.0.0.1:8080:80/tcp", "53/udp", "443/tcp")
    assert options.restart == "on-failure:3"
    assert options.memory == str(64 * 2**20)
    assert options.cpus == "1.5"
    assert options.pids_limit is None
    assert options.volumes == ("data:/data:ro", "/anon")
    assert options.mounts == ("type=volume,source=v,target=/v,readonly",)
    assert options.tmpfs == ("/run:size=1m",)
    assert options.network is None
    assert options.health_cmd == '["CMD-SHELL", "true"]'
    assert options.health_interval == "2000ms"
    assert options.health_retries == 2


def test_translate_entrypoint_and_networks() -> None:
    options = run_options(
        {
            "Image": "x",
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo"],
            "HostConfig": {"NetworkMode": "proj_default"},
            "NetworkingConfig": {
                "EndpointsConfig": {"proj_default": {"Aliases": ["web", "web-1"]}}
            },
        }
    )
    assert json.loads(str(options.entrypoint)) == ["/bin/sh", "-c"]
    assert options.command == ("echo",)
    assert options.network == "proj_default"
    assert options.network_aliases == ("web", "web-1")
    assert run_options({"Image": "x", "Entrypoint": []}).entrypoint == ""
    two = run_options({"Image": "x", "NetworkingConfig": {"EndpointsConfig": {"a": {}, "b": None}}})
    assert (two.network, two.networks) == (None, ("a", "b"))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "Image is required"),
        ({"Image": 1}, "Image: expected a string"),
        ({"Image": "x", "Env": "A=1"}, ""),  # one string is docker's shorthand: accepted
        ({"Image": "x", "Env": [1]}, "Env: expected a list of strings"),
        ({"Image": "x", "HostConfig": []}, "HostConfig: expected an object"),
        ({"Image": "x", "HostConfig": {"Memory": "1g"}}, "HostConfig.Memory: expected an integer"),
        ({"Image": "x", "HostConfig": {"Privileged": True}}, "Privileged is not supported"),
        ({"Image": "x", "HostConfig": {"PortBindings": {"80/tcp": "x"}}}, "PortBindings.80/tcp"),
        ({"Image": "x", "Labels": {"a": 1}}, "Labels.a: expected a string"),
        ({"Image": "x", "Healthcheck": {"Test": ["WHAT"]}}, "Healthcheck.Test"),
        ([1, 2], "expected an object"),
    ],
)
def test_translate_names_the_bad_field(body: object, field: str) -> None:
    if not field:
        run_options(body)
        return
    with pytest.raises(UsageError, match=field.replace(".", r"\.").replace("/", "/")):
        run_options(body)


def test_familiar_image_names() -> None:
    from rootless.api.images import epoch, familiar  # noqa: PLC0415

    assert familiar("docker.io/library/busybox:1") == "busybox:1"
    assert familiar("docker.io/py/copy:2") == "py/copy:2"
    assert familiar("127.0.0.1:5000/test/busybox:latest") == "127.0.0.1:5000/test/busybox:latest"
    assert epoch("2024-01-02T03:04:05.123456789Z") == 1704164645
    assert epoch("") == 0
    assert epoch("garbage") == 0


def test_volumes_given_a_source_are_not_anonymous() -> None:
    options = run_options(
        {
            "Image": "x",
            "Volumes": {"/www": {}, "/data": {}, "/m": {}, "/t": {}},
            "HostConfig": {
                "Binds": ["site:/www:rw"],
                "Mounts": [{"Type": "volume", "Source": "v", "Target": "/m"}],
                "Tmpfs": {"/t": ""},
            },
        }
    )
    assert options.volumes == ("site:/www:rw", "/data")

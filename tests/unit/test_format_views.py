"""``--format`` in the CLI: docker's row fields over rctl's reports, the inspect document as
a struct, and one rendering function for every command (json, templates, tables, errors)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rootless import cli
from rootless.cli import session as cli_session
from rootless.cli.gotemplate.template import TemplateError, parse
from rootless.cli.render import print_formatted
from rootless.cli.views import (
    CONTAINER_HEADERS,
    container_row,
    image_row,
    inspect_view,
    network_row,
    volume_row,
)
from rootless.models import ImageSummary, NetworkSummary
from rootless.reports.containers import ContainerListRow, MountReport, PortBinding
from rootless.reports.images import HistoryRow, ImageListRow
from rootless.reports.networks import NetworkReport
from rootless.reports.system import DiskUsageReport
from rootless.reports.volumes import VolumeReport

SUMMARY = ContainerListRow(
    id="0123456789abcdef0123456789abcdef",
    name="web",
    image="docker.io/library/busybox:latest",
    image_id="sha256:" + "ab" * 32,
    command="sh -c 'while true; do sleep 1; done'",
    created=1_700_000_000.0,
    state="running",
    status="Up 3 seconds",
    exit_code=None,
    ports=(PortBinding("80/tcp", "", 8080),),
    labels={"com.example.role": "front", "tier": "1"},
    mounts=(
        MountReport("volume", "/x", "/d", name="data", driver="local"),
        MountReport("bind", "/home/user/a-long-directory-name", "/b"),
    ),
    network_mode="slirp4netns",
)
INSPECT = {
    "Id": SUMMARY.id,
    "Name": "web",
    "State": {"Status": "running", "Running": True, "ExitCode": 0},
    "Config": {"Env": ["PATH=/bin", "A=b"], "Labels": {"com.example.role": "front", "tier": "1"}},
    "HostConfig": {"NetworkMode": "slirp4netns"},
    "NetworkSettings": {"Networks": {}, "Ports": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}},
    "Mounts": [
        {"Type": "volume", "Name": "data", "Driver": "local", "Source": "/x", "Destination": "/d"},
        {"Type": "bind", "Source": "/home/user/a-long-directory-name", "Destination": "/b"},
    ],
}


def render(template: str, row: Any) -> str:
    return parse(template).execute(row)


def row(no_trunc: bool = False) -> Any:
    return container_row(SUMMARY, no_trunc=no_trunc, now=SUMMARY.created + 90)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.ID}}", "0123456789ab"),
        ("{{.Names}} {{.Status}} {{.State}}", "web Up 3 seconds running"),
        ("{{.Image}}", "docker.io/library/busybox:latest"),
        ("{{.Command}}", '"sh -c \'while true; …"'),
        ("{{.Ports}}", "0.0.0.0:8080->80/tcp"),
        ("{{.Size}}", "0B"),
        ("{{.Labels}}", "com.example.role=front,tier=1"),
        ('{{.Label "com.example.role"}}|{{.Label "nope"}}', "front|"),
        ("{{.Mounts}}", "data,/home/user/a-l…"),
        ("{{.LocalVolumes}}", "1"),
        ("{{.Networks}}", "slirp4netns"),
    ],
)
def test_container_row_has_dockers_fields(template: str, expected: str) -> None:
    assert render(template, row()) == expected


def test_container_row_no_trunc_keeps_ids_commands_and_mounts_whole() -> None:
    full = row(no_trunc=True)
    assert render("{{.ID}}", full) == SUMMARY.id
    assert render("{{.Command}}", full) == json.dumps(SUMMARY.command)
    assert render("{{.Mounts}}", full) == "data,/home/user/a-long-directory-name"


def test_container_row_running_for_is_go_units_human_duration() -> None:
    assert render("{{.RunningFor}}", row()) == "About a minute ago"


def test_container_row_created_at_is_gos_time_string() -> None:
    text = render("{{.CreatedAt}}", row())
    date, clock, offset, _zone = text.split(" ")
    assert len(date) == 10 and len(clock) == 8 and offset[0] in "+-"


def test_json_of_a_row_is_dockers_map_of_its_fields() -> None:
    document = json.loads(render("{{json .}}", row()))
    assert list(document) == sorted(document)
    assert document["Names"] == "web"
    assert document["Labels"] == "com.example.role=front,tier=1"
    assert "Label" not in document  # a method with arguments is no field


def test_container_row_unknown_field_is_an_error() -> None:
    with pytest.raises(TemplateError, match="can't evaluate field Nope in type container row"):
        render("{{.Nope}}", row())


def test_image_volume_network_rows() -> None:
    image = ImageSummary(
        id="sha256:" + "ab" * 32, short_id="abababababab", repository="busybox", tag="latest",
        digest="", created="2024-01-02T03:04:05Z", size=4_260_000,
    )  # fmt: skip
    assert render("{{.Repository}}:{{.Tag}} {{.ID}} {{.Size}} {{.Digest}}", image_row(image)) == (
        "busybox:latest abababababab 4.26MB <none>"
    )
    volume = volume_row(
        {"Name": "data", "Driver": "local", "Mountpoint": "/v", "Labels": {"a": "b"}}
    )
    assert render('{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}} {{.Label "a"}}', volume) == (
        "data local local a=b b"
    )
    network = NetworkSummary(
        id="f" * 64, name="net", driver="bridge", subnet="10.89.0.0/24", gateway="10.89.0.1",
        internal=True, labels={}, created=0.0, bridge="rctl0",
    )  # fmt: skip
    assert render("{{.ID}} {{.Name}} {{.Internal}} {{.Subnet}}", network_row(network)) == (
        "ffffffffffff net true 10.89.0.0/24"
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.State.Status}}", "running"),
        ("{{json .Config.Env}}", '["PATH=/bin","A=b"]'),
        ('{{index .Config.Labels "com.example.role"}}', "front"),
        ("{{.Config.Labels.tier}}", "1"),
        ("{{.Config.Labels.nope}}", "<no value>"),
        ("{{range .Config.Env}}{{.}};{{end}}", "PATH=/bin;A=b;"),
        (
            "{{range $p, $b := .NetworkSettings.Ports}}{{$p}}={{(index $b 0).HostPort}}{{end}}",
            "80/tcp=8080",
        ),
        ("{{len .Mounts}} {{(index .Mounts 0).Name}}", "2 data"),
        ("{{json .State}}", '{"Status":"running","Running":true,"ExitCode":0}'),
        ("{{.State}}", "{running true 0}"),
    ],
)
def test_inspect_documents_are_structs_with_map_fields(template: str, expected: str) -> None:
    assert render(template, inspect_view("container")(INSPECT)) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{.Nope}}", "can't evaluate field Nope in type container"),
        ("{{.State.Nope}}", "can't evaluate field Nope in type container.State"),
    ],
)
def test_inspect_unknown_struct_field_is_an_error(template: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        render(template, inspect_view("container")(INSPECT))


def run_format(
    capsys: pytest.CaptureFixture[str], fmt: str | None, *, headers: dict[str, str] | None = None
) -> str:
    print_formatted(
        fmt,
        [SUMMARY, SUMMARY],
        view=lambda s: container_row(s, no_trunc=False),
        default=lambda: print("DEFAULT"),
        headers=headers,
    )
    return capsys.readouterr().out


def test_print_formatted_default_and_bare_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_format(capsys, None, headers=CONTAINER_HEADERS) == "DEFAULT\n"
    assert run_format(capsys, "", headers=CONTAINER_HEADERS) == "DEFAULT\n"
    assert run_format(capsys, "table", headers=CONTAINER_HEADERS) == "DEFAULT\n"


def test_print_formatted_json_keeps_the_report_list(capsys: pytest.CaptureFixture[str]) -> None:
    out = json.loads(run_format(capsys, "json", headers=CONTAINER_HEADERS))
    assert [item["name"] for item in out] == ["web", "web"]


def test_print_formatted_template_prints_a_line_per_item(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run_format(capsys, "{{.Names}} {{.Status}}", headers=CONTAINER_HEADERS) == (
        "web Up 3 seconds\nweb Up 3 seconds\n"
    )


def test_print_formatted_table_with_escaped_tabs(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_format(capsys, r"table {{.ID}}\t{{.Names}}", headers=CONTAINER_HEADERS)
    assert out.splitlines() == [
        "CONTAINER ID   NAMES",
        "0123456789ab   web",
        "0123456789ab   web",
    ]


def test_print_formatted_inspect_takes_the_template_as_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Without headers (inspect), "table" is text and \t stays two characters, as docker's.
    assert run_format(capsys, r"table\t{{.Names}}") == "table\\tweb\ntable\\tweb\n"


def test_print_formatted_error_is_one_line_with_a_hint_and_prints_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(TemplateError) as caught:
        run_format(capsys, "{{.Names}} {{.Nope}}", headers=CONTAINER_HEADERS)
    assert "can't evaluate field Nope" in caught.value.message
    assert caught.value.hint is not None and "Go template" in caught.value.hint
    assert capsys.readouterr().out == ""


class FakeReport:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def to_docker(self) -> dict[str, Any]:
        return self.document


class FakeContainers:
    def summaries(
        self, *, all_containers: bool = False, filters: tuple[str, ...] = ()
    ) -> list[ContainerListRow]:
        return [SUMMARY]

    def inspect(self, ref: str) -> FakeReport:
        return FakeReport(INSPECT)


IMAGE = ImageSummary(
    id="sha256:" + "ab" * 32, short_id="abababababab", repository="busybox", tag="latest",
    digest="", created="2024-01-02T03:04:05Z", size=4_260_000,
)  # fmt: skip
NETWORK = NetworkSummary(
    id="f" * 64, name="net", driver="bridge", subnet="10.89.0.0/24", gateway="10.89.0.1",
    internal=False, labels={"a": "b"}, created=0.0, bridge="rctl0",
)  # fmt: skip


class FakeImages:
    def summaries(self, *, all_images: bool, filters: tuple[str, ...]) -> list[ImageSummary]:
        return [IMAGE]

    def inspect(self, name: str) -> FakeReport:
        return FakeReport({"Id": IMAGE.id, "Config": {"Cmd": ["sh"], "Labels": {}}})

    def history(self, name: str) -> list[HistoryRow]:
        return [HistoryRow("<missing>", "2024-01-02T03:04:05Z", "/bin/sh -c\tx", 10, "")]


class FakeVolumes:
    def reports(self, filters: tuple[str, ...]) -> list[VolumeReport]:
        return [VolumeReport("data", "2024-01-02T03:04:05Z", "/v/data", labels={"k": "v"})]

    def inspect(self, name: str) -> VolumeReport:
        return self.reports(())[0]


class FakeNetworks:
    def summaries(self, filters: tuple[str, ...], *, builtin: bool = False) -> list[NetworkSummary]:
        return [NETWORK]

    def inspect(self, ref: str) -> NetworkReport:
        return NetworkReport("net", "f" * 64, "bridge", subnet="10.89.0.0/24")


class FakeEngine:
    def disk_usage(self) -> DiskUsageReport:
        images = (ImageListRow(IMAGE.id, ("busybox:latest",), (), IMAGE.created, 10),) * 2
        return DiskUsageReport(layers_size=2_000_000, images=images, containers=(SUMMARY,))

    containers = FakeContainers()
    images = FakeImages()
    volumes = FakeVolumes()
    networks = FakeNetworks()


@pytest.fixture
def fake_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_session, "Engine", FakeEngine)


@pytest.mark.usefixtures("fake_engine")
@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["ps", "--format", "{{.Names}} {{.Status}}"], "web Up 3 seconds\n"),
        (
            ["ps", "--format", r"table {{.ID}}\t{{.Names}}"],
            "CONTAINER ID   NAMES\n0123456789ab   web\n",
        ),
        (["inspect", "-f", "{{.State.Status}}", "web"], "running\n"),
        (["inspect", "--format", "{{json .Config.Env}}", "web"], '["PATH=/bin","A=b"]\n'),
        (["container", "inspect", "-f", "{{.Name}}", "web"], "web\n"),
        (
            ["images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"],
            "busybox:latest abababababab\n",
        ),
        (["image", "ls", "--format", "table {{.Repository}}"], "REPOSITORY\nbusybox\n"),
        (["image", "inspect", "-f", "{{index .Config.Cmd 0}}", "busybox"], "sh\n"),
        (
            ["history", "--format", "{{.ID}} {{.CreatedBy}} {{.Size}}", "busybox"],
            "<missing> /bin/sh -c x 10B\n",
        ),
        (["volume", "ls", "--format", "{{.Name}} {{.Label `k`}}"], "data v\n"),
        (
            ["system", "df", "--format", "{{.Type}}={{.TotalCount}}/{{.Active}}"],
            "Images=2/0\nContainers=1/1\nLocal Volumes=0/0\n",
        ),
        (
            ["volume", "ls", "--format", "json"],
            json.dumps([FakeVolumes().inspect("data").to_docker()], indent=4) + "\n",
        ),
        (["volume", "inspect", "-f", "{{.Mountpoint}}", "data"], "/v/data\n"),
        (["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Labels}}"], "net bridge a=b\n"),
        (
            ["network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}", "net"],
            "10.89.0.0/24\n",
        ),
    ],
)
def test_cli_commands_take_templates(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == expected


@pytest.mark.usefixtures("fake_engine")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ps", "--format", "{{.Names"], "Error: template: :1: unclosed action"),
        (["ps", "--format", "{{nope .Names}}"], 'Error: template: :1: function "nope" not defined'),
        (["inspect", "-f", "{{.Nope}}", "web"], "can't evaluate field Nope in type inspect"),
    ],
)
def test_cli_template_errors_are_one_line_and_exit_125(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(argv) == 125
    captured = capsys.readouterr()
    assert captured.out == ""
    error, hint = captured.err.splitlines()
    assert error.startswith("Error: template: :1")
    assert message in error
    assert hint.startswith(("Hint: --format takes", "Hint: -f/--format takes"))

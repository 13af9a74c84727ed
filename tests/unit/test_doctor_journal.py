"""``rctl doctor``'s journal fields probe: what the probe unit's entries say."""

from __future__ import annotations

from rootless.doctor import LOG_FIELDS_CHECK, log_fields_finding
from units.journal import JournalEntry


def entry(**fields: str) -> JournalEntry:
    return JournalEntry(timestamp_usec=1, message="probe", fields=fields)


def test_fields_on_the_line_mean_they_work() -> None:
    found = log_fields_finding([entry(RCTL_DOCTOR_PROBE="abc")], "abc")
    assert found.check == LOG_FIELDS_CHECK and found.ok and not found.note


def test_a_line_without_the_field_is_a_note_naming_the_way_round() -> None:
    found = log_fields_finding([entry(SYSLOG_IDENTIFIER="rctl-doctor-abc")], "abc")
    assert found.ok and found.note
    assert "journalctl --user -t NAME" in found.detail and "systemd#29956" in found.detail


def test_another_probes_token_does_not_count() -> None:
    assert log_fields_finding([entry(RCTL_DOCTOR_PROBE="other")], "abc").note


def test_no_line_at_all_is_a_failure_with_a_fix() -> None:
    found = log_fields_finding([], "abc")
    assert not found.ok and found.fix

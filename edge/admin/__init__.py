"""The community admin's tools: they speak the same protocol (`edge.protocol`) as the gates.

- `keys`: a new admin signing key (`keygen`).
- `person_file`: persons from a CSV/JSON file (`read_person_file`, `PersonFileError`), checked as a gate
  would (docs/person-files.md); `schedule_text`: a weekly schedule written in one CSV cell.
- `build`: signed pushes within a gate's limits (`build_push`, `payload_version`).
- `client`: `AdminClient`, a short-lived MQTT v5 connection (built with `edge.sync.client.make_client`).
- `publish`: publishing a push and collecting the gates' acks (`push`).

The command-line front end is `edge.cli.admin` (`gate admin ...`).
"""

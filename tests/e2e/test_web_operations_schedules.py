"""The schedule routes over real HTTP: the list (owned by code or not), pause with a note,
resume, trigger (the job appears), and their scope checks.
"""

from __future__ import annotations

from pathlib import Path

from errands import App
from errands.states import JobState
from tests.e2e.web_support import api_server, make_token


def test_schedules_pause_with_a_note_resume_and_trigger_a_job(app: App, tmp_path: Path) -> None:
    app.schedules.upsert("nightly", "report", every=86400, kwargs={"steps": 2})
    read, operate = make_token(app, "read"), make_token(app, "operate")
    with api_server(app, tmp_path) as server:
        with server.client(read) as reader:
            listed = reader.get("/v1/schedules").json()["schedules"]
            by_id = {s["id"]: s for s in listed}
            [nap] = [s for s in listed if s["task"].endswith(".nap")]
            assert nap["origin"] == "code", "a schedule of @app.periodic says so"
            assert by_id["nightly"]["origin"] == "operator"
            assert nap["paused"] is False
            assert nap["next_fire"].endswith("Z")
            assert (nap["fired"], nap["missed"]) == (0, 0)
            # No scheduler ran: the code's schedule is listed, not stored, and still pauses.
            assert app.broker.schedules.read().defs == {
                "nightly": app.broker.schedules.read().defs["nightly"]
            }
            refused = reader.post(f"/v1/schedules/{nap['id']}/pause", json={"note": "x"})
            assert refused.status_code == 403, "a read token cannot pause"
        with server.client(operate) as http:
            paused = http.post(
                f"/v1/schedules/{nap['id']}/pause", json={"note": "billing freeze until 3pm"}
            )
            assert paused.status_code == 200, paused.text
            assert paused.json()["paused"] is True
            assert paused.json()["note"] == "billing freeze until 3pm"
            assert paused.json()["next_fire"] is None, "a paused schedule does not fire"
            assert http.get("/v1/schedules").status_code == 403, "operate does not read"
            with server.client(read) as reader:
                again = reader.get("/v1/schedules").json()["schedules"]
            assert {s["id"]: s["note"] for s in again}[nap["id"]] == "billing freeze until 3pm"
            resumed = http.post(f"/v1/schedules/{nap['id']}/resume")
            assert resumed.json()["paused"] is False
            assert resumed.json()["next_fire"] is not None

            triggered = http.post("/v1/schedules/nightly/trigger")
            assert triggered.status_code == 202, triggered.text
            job = triggered.json()
            assert job["schedule"] == "nightly"
            detail = app.inspector.job(job["queue"], job["id"])
            assert detail is not None, "the job the trigger sent is there"
            assert detail.state is JobState.QUEUED
            assert detail.kwargs == {"steps": 2}

            for verb in ("pause", "resume", "trigger"):
                missing = http.post(f"/v1/schedules/nope/{verb}")
                assert missing.status_code == 404, verb
                assert "GET /v1/schedules" in missing.json()["detail"]
            too_long = http.post(f"/v1/schedules/{nap['id']}/pause", json={"note": "x" * 501})
            assert too_long.status_code == 422

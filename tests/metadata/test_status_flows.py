"""Status changes of definitions and import jobs go through declared transitions (viewflow.fsm)."""

import pytest
from viewflow import fsm

from dynamic_models.models import ImportJob, ImportJobFlow
from metadata import services
from metadata.models import Definition, DefinitionFlow
from tests.metadata.test_metadata import note_kind  # noqa: F401  (a fixture)

Status = Definition.Status
JobStatus = ImportJob.Status


def _graph(flow) -> set[tuple[str, str, str]]:
    return {(transition.slug, str(transition.source), str(transition.target))
            for transitions in flow.status.get_transitions().values() for transition in transitions}


def test_the_transitions_are_declared_once_and_can_be_read():
    assert _graph(DefinitionFlow) == {("publish", "draft", "published"), ("archive", "published", "archived")}
    assert _graph(ImportJobFlow) == {("start", "queued", "running"), ("succeed", "running", "succeeded"),
                                     ("fail", "running", "failed")}


def test_a_definition_moves_only_along_its_transitions():
    definition = Definition(kind="note", key="k", version=1, body={}, checksum="")
    with pytest.raises(fsm.TransitionNotAllowed):
        definition.flow.archive()  # A draft was never in service.
    definition.flow.publish()
    assert definition.status == Status.PUBLISHED and definition.published_at is not None
    with pytest.raises(fsm.TransitionNotAllowed):
        definition.flow.publish()
    definition.flow.archive()
    assert definition.status == Status.ARCHIVED
    with pytest.raises(fsm.TransitionNotAllowed):
        definition.flow.publish()  # An archived version comes back as a new version (rollback), never itself.
    assert definition.status == Status.ARCHIVED


def test_services_publish_and_archive_through_the_flow(tenant, note_kind):  # noqa: F811
    services.save_draft("note", "flow", {"title": "One"})
    first = services.publish("note", "flow")
    services.save_draft("note", "flow", {"title": "Two"})
    second = services.publish("note", "flow")
    first.refresh_from_db()
    assert (first.status, second.status) == (Status.ARCHIVED, Status.PUBLISHED) and second.published_at
    services.archive("note", "flow")
    second.refresh_from_db()
    assert second.status == Status.ARCHIVED and services.get_published("note", "flow") is None
    services.archive("note", "flow")  # Nothing published: nothing to do.


def test_an_import_job_moves_only_along_its_transitions():
    job = ImportJob(entity_key="expense", file_format=ImportJob.Format.CSV)
    with pytest.raises(fsm.TransitionNotAllowed):
        job.flow.succeed()  # Not started.
    job.flow.start()
    assert job.status == JobStatus.RUNNING and job.started_at is not None
    with pytest.raises(fsm.TransitionNotAllowed):
        job.flow.start()  # A job whose worker died is run again as it is, never started twice.
    job.flow.fail()
    assert job.status == JobStatus.FAILED and job.is_finished
    with pytest.raises(fsm.TransitionNotAllowed):
        job.flow.succeed()

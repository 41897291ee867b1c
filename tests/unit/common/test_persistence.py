import pytest
from sqlalchemy import insert, select

from crm_common.db import SessionScope, engine_for
from crm_common.errors import Conflict, ValidationFailed
from crm_common.events import make_envelope
from crm_common.inbox import first_delivery
from crm_common.models import check_version
from crm_common.pagination import MAX_PAGE_SIZE, SortKey, keyset_page

from .models import Base, InboxEvent, Note


@pytest.fixture
def scope(sqlite_uri):
    engine = engine_for(sqlite_uri)
    Base.metadata.create_all(engine)
    return SessionScope(engine)


def test_sqlite_runs_with_wal_and_foreign_keys(scope):
    with scope.session() as session:
        assert session.connection().exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert session.connection().exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_session_commits_on_success_and_rolls_back_on_error(scope):
    with scope.session() as session:
        session.add(Note(title="kept"))
    with pytest.raises(RuntimeError), scope.session() as session:
        session.add(Note(title="dropped"))
        session.flush()
        raise RuntimeError("boom")
    with scope.session() as session:
        assert session.scalars(select(Note.title)).all() == ["kept"]


def test_version_increments_and_a_stale_writer_gets_a_conflict(scope):
    with scope.session() as session:
        note = Note(title="v1")
        session.add(note)
    assert note.version == 1

    with scope.session() as session:
        fresh = session.get(Note, note.id)
        check_version(fresh, 1)
        fresh.title = "v2"
    assert fresh.version == 2

    with scope.session() as session:
        stale = session.get(Note, note.id)
        with pytest.raises(Conflict) as caught:
            check_version(stale, 1)
    assert caught.value.details["current_version"] == 2


def test_concurrent_update_of_the_same_row_is_a_conflict(scope):
    with scope.session() as session:
        note = Note(title="v1")
        session.add(note)
    with pytest.raises(Conflict), scope.session() as first:
        mine = first.get(Note, note.id)
        mine.title = "mine"
        # someone else moves the row to version 2 underneath this session's copy
        first.connection().exec_driver_sql(
            "UPDATE notes SET version = 2, title = 'theirs' WHERE id = ?", (note.id.hex,)
        )
    with scope.session() as session:
        assert session.get(Note, note.id).title == "v1"  # nothing of the stale write stayed


def test_inbox_accepts_an_event_once_per_handler(scope):
    envelope = make_envelope("note_added", {}, source="test", actor_id=None)
    with scope.session() as session:
        assert first_delivery(session, InboxEvent, envelope, "a.handle")
    with scope.session() as session:
        assert not first_delivery(session, InboxEvent, envelope, "a.handle")
        assert first_delivery(session, InboxEvent, envelope, "b.handle")


def test_keyset_pages_cover_every_row_once_in_order(scope):
    titles = [f"华东{n % 7}" for n in range(23)]
    with scope.session() as session:
        session.add_all(Note(title=title) for title in titles)

    for descending in (False, True):
        seen, cursor = [], None
        with scope.session() as session:
            while True:
                page = keyset_page(
                    session, select(Note), SortKey(Note.title, Note.id, descending), cursor, 5
                )
                seen.extend(page.items)
                cursor = page.next_cursor
                if cursor is None:
                    break
        assert len({note.id for note in seen}) == 23
        assert [note.title for note in seen] == sorted(titles, reverse=descending)


def test_page_size_is_bounded_and_cursor_checked(scope):
    with scope.session() as session:
        session.add_all(Note(title=str(n)) for n in range(MAX_PAGE_SIZE + 5))
    with scope.session() as session:
        page = keyset_page(session, select(Note), SortKey(Note.title, Note.id), None, 10_000)
        assert len(page.items) == MAX_PAGE_SIZE
        with pytest.raises(ValidationFailed) as caught:
            keyset_page(session, select(Note), SortKey(Note.title, Note.id), "garbage!", 5)
        assert "cursor" in caught.value.field_errors
        with pytest.raises(ValidationFailed):
            keyset_page(session, select(Note), SortKey(Note.title, Note.id), None, 0)


def test_a_savepoint_first_in_a_session_still_rolls_back_with_it(scope):
    with pytest.raises(RuntimeError), scope.session() as session:
        with session.begin_nested():
            session.add(Note(title="inside savepoint"))
        raise RuntimeError("outer failure")
    with scope.session() as session:
        assert session.scalars(select(Note.title)).all() == []


def test_a_read_runs_without_a_transaction_and_sees_what_was_committed(scope):
    with scope.session() as session:
        session.add(Note(title="committed"))
    with scope.read() as session:
        assert session.scalars(select(Note.title)).all() == ["committed"]
        assert not session.connection().connection.dbapi_connection.in_transaction
    with scope.session() as session:
        session.scalars(select(Note.title)).all()
        assert session.connection().connection.dbapi_connection.in_transaction


def test_a_read_refuses_to_write(scope):
    with pytest.raises(RuntimeError, match="a read cannot write"), scope.read() as session:
        session.add(Note(title="sneaked in"))
        session.flush()
    with pytest.raises(RuntimeError, match="a read cannot write"), scope.read() as session:
        session.execute(insert(Note).values(title="sneaked in", version=1))
    with scope.read() as session:
        assert session.scalars(select(Note.title)).all() == []


def test_a_read_inside_the_calls_transaction_sees_its_uncommitted_writes(scope):
    with pytest.raises(RuntimeError), scope.transaction() as outer:
        outer.add(Note(title="not yet committed"))
        outer.flush()
        with scope.read() as session:
            assert session is outer
            assert session.scalars(select(Note.title)).all() == ["not yet committed"]
        raise RuntimeError("the call fails")
    with scope.read() as session:
        assert session.scalars(select(Note.title)).all() == []

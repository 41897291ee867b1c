"""The only module of the notify service that queries its database: lookups scoped by the
caller's grants (``crm_common.scope``), keyset pages, and the rows use cases save.

A read is one statement of table columns (not mapped entities), built once per shape of the
call (the caller's grants, the filters given) and run with the call's values as parameters::

    _things = cast(Table, Thing.__table__)
    THING_SCOPE = ScopeColumns(owner=_things.c.owner_id, department=_things.c.department_id)


    @lru_cache(maxsize=64)
    def _thing_statement(scope: ScopeShape) -> Select[Any]:
        return select(*_things.c).where(
            _things.c.id == bindparam("thing_id"), scope_condition(scope, THING_SCOPE)
        )


    def thing_row(session: Session, thing_id: uuid.UUID, principal: Principal) -> Row[Any]:
        parameters = {"thing_id": thing_id, **scope_parameters(principal)}
        row = session.execute(_thing_statement(scope_shape(principal)), parameters).first()
        if row is None:
            raise NotFound.of("thing", thing_id)
        return row

Pages take their statements from ``crm_common.pagination.keyset_select`` and their values from
``page_parameters``; a list hanging off a row (tags, lines) comes in the same statement through
``crm_common.reads.value_list``. Writes load mapped objects in ``db.session()``.
"""

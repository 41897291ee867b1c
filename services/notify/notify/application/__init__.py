"""The notify service's use cases: one module per aggregate, each a
``crm_common.application.UseCases`` class built on the call's ``UseCaseContext``.

A read answers with the rows the repository selected, dumped by a
``crm_common.reads.RowDumper`` of the response schema (the dict ``schema.dump`` would give,
without building objects)::

    THING_ROWS = RowDumper(ThingSchema())

    class Things(UseCases):
        def get(self, thing_id: Any) -> dict[str, Any]:
            self.principal.require(READ)
            return THING_ROWS.dump(repository.thing_row(self.session, thing_id, self.principal))
"""

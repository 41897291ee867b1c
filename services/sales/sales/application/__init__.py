"""The sales service's use cases: one module per aggregate, each a
``crm_common.application.UseCases`` class built on the call's ``UseCaseContext``."""

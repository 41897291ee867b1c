"""The customer context's use cases, one module per aggregate, in the suite's shared style
(``crm_common.application``): customers, contacts, relationships, care records, history, merge
and CSV transfer. Each class is built per call on a ``UseCaseContext``."""

"""The org context's use cases, one module per aggregate, in the shape of
``crm_common.application``.

Administration (``org:admin``): ``departments``, ``regions``, ``people``, ``users``, ``roles``
and ``grants``, each a class over ``admin.Aggregate``, reached by kind through ``records``;
``audit`` reads the audit log. Sign-in: ``sign_in`` (sign-in, refresh, sign-out) and
``account`` (the signed-in user's view, changing one's password), which open their own
transactions; ``authz`` (effective principals, ``authz_version``) and ``sessions`` (ending
sign-in sessions) serve both.
"""

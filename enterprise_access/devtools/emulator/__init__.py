"""
A local, faithful stand-in for the three upstream services of learner-credit redemption, served
over real HTTP by one process (see ``docs/decisions/0004-upstream-emulator.rst``).

Run it with ``python manage.py run_upstream_emulator --port 18270 [--host H] [--db PATH]``, or
in-process with ``testing.running_emulator()``. Its state lives in its own SQLite file (default
``var/upstream_emulator.sqlite3``), never in the service's database.

Services (point each client at its prefix; the contract sheet describes every path)
====================================================================================

- ``/subsidy``  enterprise-subsidy: ``api/v1/subsidies/<uuid>/``, ``.../can_redeem/``,
  ``.../aggregates-by-learner``, ``api/v1/content-metadata/<key>/``, ``api/v1/transactions/``,
  ``api/v1/transactions/<uuid>/``, ``api/v2/subsidies/<uuid>/admin/transactions/`` (GET, POST),
  ``api/v2/subsidies/<uuid>/admin/deposits/`` (POST).
- ``/catalog``  enterprise-catalog: ``api/v2/enterprise-catalogs/<uuid>/contains_content_items/``,
  ``.../get_content_metadata/``, ``api/v1/content-metadata/<id>/``,
  ``api/v2/enterprise-customer/<uuid>/content-metadata/<id>/`` (and its v1 twin).
- ``/lms``  LMS: ``enterprise/api/v1/enterprise-learner/``, ``enterprise/api/v1/enterprise-customer/<uuid>/``,
  ``.../enroll_learners_in_courses/`` (POST),
  ``enterprise/api/v1/enterprise-subsidy-fulfillment/<uuid>/cancel-fulfillment`` (POST),
  ``api/user/v1/accounts``, and the token endpoint ``oauth2/access_token`` (POST, form-encoded;
  its fault/log service name is ``oauth``).

Every API call needs ``Authorization: JWT <access_token>`` with a token from the emulated token
endpoint (401 ``{"detail": ...}`` otherwise). Content keys are accepted raw in paths. Unknown
paths, status codes and error bodies follow the real services (``README.rst``, "How the real
services answer"): e.g. Django's HTML 404 page for a path no route matches.

Control API (``/_control``: no token; never delayed, faulted, logged or counted)
=================================================================================

``GET  /_control/health``
    ``{"status": "ok", "db": path, "run_token": the --run-token it was started with, or null}``.
``POST /_control/seed``
    Upsert ``{"customers", "learners", "catalogs", "content", "subsidies", "token_expires_in"?}``
    (shapes in ``README.rst``); the objects join the seeded baseline. A subsidy's
    ``starting_balance`` becomes its committed initial deposit, keyed
    ``ledger-for-subsidy-<uuid>-<amount>-initial-deposit``. 200 ``{"seeded": {section: count},
    "ignored": [unknown top-level keys]}``; 400 ``{"detail"}`` naming a bad field.
``POST /_control/reset``
    Back to the seeded baseline: every transaction except initial deposits, every reversal and
    enrollment, the faults, the request log, the latency and the statistics are cleared.
``POST /_control/wipe``
    Forget everything, the seeded baseline included.
``POST /_control/faults``
    ``{"service": "subsidy"|"catalog"|"lms"|"oauth", "method": "GET"|"POST"|null, "path": regex,
    "status": 503, "delay_ms": 0, "body": str|null, "times": int|null, "content_type"?: str,
    "internal"?: false, "phase"?: "before"|"after"}``. The oldest fault whose service and method
    match and whose ``path`` regex is found (``re.search``) in the path after the service prefix
    applies: wait ``delay_ms``, then answer ``status`` with ``body`` (raw; default ``{"detail":
    "Emulated fault: HTTP <status>"}``). ``status: 0`` closes the socket without answering;
    ``status: null`` only delays. ``phase`` "before" (default) answers instead of the service;
    "after" lets the service handle the request and commit its writes first, then delays,
    replaces or drops its answer. ``times`` limits how many requests it hits (null: until
    cleared).
    ``"internal": true`` targets the subsidy provider's own outbound calls instead (``catalog``
    pricing, ``lms`` accounts/enrollment, ``geag`` exec-ed orders), e.g. to fail or stall the
    enrollment step while the ledger lock is held. 201 with the stored fault (``id`` added).
``GET /_control/faults`` lists them; ``DELETE /_control/faults`` clears them.
``GET  /_control/requests[?service=]``
    ``[{"service", "method", "path" (after the prefix), "query" ({name: [values]}), "status"
    (0 = dropped), "time"}]``, newest last. ``DELETE`` clears it.
``POST /_control/latency``
    ``{"delay_ms": N}``: a base delay before every non-control response. ``GET`` reads it.
``POST /_control/reversals``
    ``{"transaction_uuid", "metadata"?: obj, "idempotency_key"?: str}``: reverse a committed,
    unreversed transaction as the provider does: cancel its GEAG allocation (exec-ed) and its LMS
    fulfillment (the enrollment becomes inactive), then commit the reversal (quantity = +price).
    201 with the transaction; 404 unknown; 409 not committed, already reversed or nothing to
    cancel; 502 ``{"detail", "rolled_back": true}`` when a cancellation failed and nothing was
    written.
``GET  /_control/transactions[?subsidy_uuid=]``
    Every transaction, all states, oldest first, in the §2.6 JSON.
``GET  /_control/enrollments``
    The LMS enrollments the redemptions made (``force_enrollment``, ``active``, ...).
``GET  /_control/stats``
    ``{"connections_opened", "requests", "connections_accepted"}`` since start or the last reset:
    TCP connections that carried a service request (control-only connections excluded), service
    requests, and every TCP connection accepted. ``DELETE`` zeroes them.
"""

"""Ledger rows: balances, transactions and their reversals, and the LMS enrollments redemptions make."""
import json
import uuid

from .database import TRANSACTION_FIELDS, TRANSACTION_ORDERINGS, now_stored


class LedgerMixin:
    """Transactions of every subsidy, each with at most one reversal, and enrollments."""

    # --- ledger -----------------------------------------------------------------------------------

    def balance(self, subsidy_uuid):
        """Sum of quantity (plus its reversal) over every transaction that is not failed."""
        row = self._one(
            "SELECT COALESCE(SUM(quantity + COALESCE(reversal_quantity, 0)), 0) AS total FROM transactions"
            " WHERE subsidy_uuid = ? AND state != 'failed'",
            (subsidy_uuid,),
        )
        return row["total"]

    def total_deposits(self, subsidy_uuid):
        row = self._one(
            "SELECT COALESCE(SUM(quantity + COALESCE(reversal_quantity, 0)), 0) AS total FROM transactions"
            " WHERE subsidy_uuid = ? AND kind = 'deposit' AND state = 'committed'",
            (subsidy_uuid,),
        )
        return row["total"]

    def starting_balance(self, subsidy_uuid):
        row = self._one(
            "SELECT quantity FROM transactions WHERE subsidy_uuid = ? AND seeded = 1 AND kind = 'deposit'",
            (subsidy_uuid,),
        )
        return row["quantity"] if row else 0

    def transaction(self, transaction_uuid):
        return self._one("SELECT * FROM transactions WHERE uuid = ?", (transaction_uuid,))

    def transaction_by_key(self, subsidy_uuid, idempotency_key):
        return self._one(
            "SELECT * FROM transactions WHERE subsidy_uuid = ? AND idempotency_key = ?",
            (subsidy_uuid, idempotency_key),
        )

    def committed_unreversed(self, subsidy_uuid, lms_user_id, content_key):
        """The learner's committed, unreversed redemption of ``content_key``, or None."""
        return self._one(
            "SELECT * FROM transactions WHERE subsidy_uuid = ? AND lms_user_id = ? AND content_key = ?"
            " AND state = 'committed' AND reversal_uuid IS NULL ORDER BY seq LIMIT 1",
            (subsidy_uuid, lms_user_id, content_key),
        )

    def learner_content_transactions(self, subsidy_uuid, lms_user_id, content_key):
        return self._all(
            "SELECT * FROM transactions WHERE subsidy_uuid = ? AND lms_user_id = ? AND content_key = ?"
            " ORDER BY created, seq",
            (subsidy_uuid, lms_user_id, content_key),
        )

    def insert_transaction(self, conn, **values):
        """Insert inside an open ``write()``; returns the new row."""
        now = now_stored()
        values.setdefault("uuid", str(uuid.uuid4()))
        values.setdefault("created", now)
        values.setdefault("modified", now)
        for json_field in ("metadata", "external_reference"):
            if json_field in values:
                values[json_field] = json.dumps(values[json_field])
        columns = ", ".join(values)
        conn.execute(
            f"INSERT INTO transactions ({columns}) VALUES ({', '.join('?' * len(values))})",  # noqa: S608
            tuple(values.values()),
        )
        return dict(conn.execute("SELECT * FROM transactions WHERE uuid = ?", (values["uuid"],)).fetchone())

    def update_transaction(self, transaction_uuid, **values):
        unknown = set(values) - set(TRANSACTION_FIELDS)
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        values.setdefault("modified", now_stored())
        for json_field in ("metadata", "external_reference"):
            if json_field in values:
                values[json_field] = json.dumps(values[json_field])
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self.write() as conn:
            conn.execute(
                f"UPDATE transactions SET {assignments} WHERE uuid = ?",  # noqa: S608 - whitelisted names
                (*values.values(), transaction_uuid),
            )
            return dict(conn.execute("SELECT * FROM transactions WHERE uuid = ?", (transaction_uuid,)).fetchone())

    def add_reversal(self, transaction_uuid, *, idempotency_key, metadata):
        """
        Attach the one committed reversal (quantity = -quantity) to a transaction; returns the row,
        or None if it already had one (a concurrent reversal won).
        """
        now = now_stored()
        with self.write() as conn:
            updated = conn.execute(
                "UPDATE transactions SET reversal_uuid = ?, reversal_state = 'committed', reversal_idempotency_key = ?,"
                " reversal_quantity = -quantity, reversal_metadata = ?, reversal_created = ?, reversal_modified = ?"
                " WHERE uuid = ? AND reversal_uuid IS NULL",
                (str(uuid.uuid4()), idempotency_key, json.dumps(metadata), now, now, transaction_uuid),
            ).rowcount
            if not updated:
                return None
            return dict(conn.execute("SELECT * FROM transactions WHERE uuid = ?", (transaction_uuid,)).fetchone())

    def _filter_sql(self, subsidy_uuid, filters):
        sql = " FROM transactions WHERE 1 = 1"
        args = []
        if subsidy_uuid is not None:
            sql += " AND subsidy_uuid = ?"
            args.append(subsidy_uuid)
        for column in ("lms_user_id", "content_key", "subsidy_access_policy_uuid"):
            if filters.get(column) is not None:
                sql += f" AND {column} = ?"
                args.append(filters[column])
        if filters.get("states"):
            sql += f" AND state IN ({','.join('?' * len(filters['states']))})"
            args.extend(filters["states"])
        if filters.get("search"):
            sql += " AND (instr(lower(COALESCE(lms_user_email, '')), ?) > 0" \
                   " OR instr(lower(COALESCE(content_title, '')), ?) > 0)"
            args.extend([filters["search"].lower()] * 2)
        return sql, args

    def count_transactions(self, subsidy_uuid, filters):
        sql, args = self._filter_sql(subsidy_uuid, filters)
        row = self._one("SELECT COUNT(*) AS n, COALESCE(SUM(quantity + COALESCE(reversal_quantity, 0)), 0) AS total"
                        + sql, args)
        return row["n"], row["total"]

    def list_transactions(self, subsidy_uuid, filters, *, ordering="-created", offset=0, limit=-1):
        sql, args = self._filter_sql(subsidy_uuid, filters)
        order = TRANSACTION_ORDERINGS.get(ordering, TRANSACTION_ORDERINGS["-created"])
        return self._all(f"SELECT *{sql} ORDER BY {order} LIMIT ? OFFSET ?", [*args, limit, offset])

    def aggregates_by_learner(self, subsidy_uuid, policy_uuid=None):
        sql = ("SELECT lms_user_id, COUNT(*) AS total FROM transactions WHERE subsidy_uuid = ? AND kind = 'redemption'"
               " AND state = 'committed' AND reversal_uuid IS NULL")
        args = [subsidy_uuid]
        if policy_uuid is not None:
            sql += " AND subsidy_access_policy_uuid = ?"
            args.append(policy_uuid)
        return self._all(sql + " GROUP BY lms_user_id ORDER BY lms_user_id", args)

    # --- enrollments (the LMS side of a redemption) -----------------------------------------------

    def add_enrollment(self, *, customer_uuid, lms_user_id, course_run_key, transaction_uuid, force_enrollment):
        fulfillment_uuid = str(uuid.uuid4())
        with self.write() as conn:
            conn.execute(
                "INSERT INTO enrollments (fulfillment_uuid, customer_uuid, lms_user_id, course_run_key,"
                " transaction_uuid, force_enrollment, active, created) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                (fulfillment_uuid, customer_uuid, lms_user_id, course_run_key, transaction_uuid,
                 int(bool(force_enrollment)), now_stored()),
            )
        return fulfillment_uuid

    def enrollment(self, fulfillment_uuid):
        return self._one("SELECT * FROM enrollments WHERE fulfillment_uuid = ?", (fulfillment_uuid,))

    def deactivate_enrollment(self, fulfillment_uuid):
        """Mark an enrollment inactive (its fulfillment cancelled); False if it was inactive already."""
        with self.write() as conn:
            return conn.execute(
                "UPDATE enrollments SET active = 0 WHERE fulfillment_uuid = ? AND active = 1", (fulfillment_uuid,),
            ).rowcount == 1

    def enrollments(self):
        return self._all("SELECT * FROM enrollments ORDER BY created, rowid")

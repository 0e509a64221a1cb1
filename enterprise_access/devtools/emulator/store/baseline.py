"""The seeded baseline: upserting a normalized seed document, reset, wipe, and reading seeded objects."""
import json
import uuid

from .database import now_stored


def initial_deposit_key(subsidy_uuid, amount):
    return f"ledger-for-subsidy-{subsidy_uuid}-{amount}-initial-deposit"


class BaselineMixin:
    """Seeded customers, learners, catalogs, content and subsidies (with their initial deposits)."""

    # --- seeding ----------------------------------------------------------------------------------

    def upsert_seed(self, seed):
        """Upsert a normalized seed document (see ``seeding.normalize_seed``) into the baseline."""
        now = now_stored()
        with self.write() as conn:
            if seed.get("token_expires_in") is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('token_expires_in', ?)",
                    (str(seed["token_expires_in"]),),
                )
            for customer in seed["customers"]:
                conn.execute(
                    "INSERT OR REPLACE INTO customers (uuid, doc) VALUES (?, ?)",
                    (customer["uuid"], json.dumps(customer)),
                )
            for learner in seed["learners"]:
                self._upsert_learner(conn, learner, now)
            for catalog in seed["catalogs"]:
                conn.execute(
                    "INSERT OR REPLACE INTO catalogs (uuid, customer_uuid, doc) VALUES (?, ?, ?)",
                    (catalog["uuid"], catalog["enterprise_customer_uuid"], json.dumps(catalog)),
                )
            for course in seed["content"]:
                conn.execute("DELETE FROM runs WHERE course_key = ?", (course["course_key"],))
                conn.execute(
                    "INSERT OR REPLACE INTO courses (course_key, course_uuid, doc) VALUES (?, ?, ?)",
                    (course["course_key"], course["course_uuid"], json.dumps(course)),
                )
                for run in course["runs"]:
                    conn.execute(
                        "INSERT OR REPLACE INTO runs (run_key, run_uuid, course_key) VALUES (?, ?, ?)",
                        (run["key"], run["uuid"], course["course_key"]),
                    )
            for subsidy in seed["subsidies"]:
                self._upsert_subsidy(conn, subsidy, now)
        return {name: len(seed[name]) for name in ("customers", "learners", "catalogs", "content", "subsidies")}

    @staticmethod
    def _upsert_learner(conn, learner, now):
        conn.execute(
            "INSERT OR REPLACE INTO learners (lms_user_id, doc) VALUES (?, ?)",
            (learner["lms_user_id"], json.dumps(learner)),
        )
        wanted = learner["enterprise_customer_uuids"]
        placeholders = ",".join("?" * len(wanted)) or "''"
        conn.execute(
            f"DELETE FROM learner_links WHERE lms_user_id = ? AND customer_uuid NOT IN ({placeholders})",
            (learner["lms_user_id"], *wanted),
        )
        for position, customer_uuid in enumerate(wanted):
            conn.execute(
                "INSERT INTO learner_links (lms_user_id, customer_uuid, position, created) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (lms_user_id, customer_uuid) DO UPDATE SET position = excluded.position",
                (learner["lms_user_id"], customer_uuid, position, now),
            )

    @staticmethod
    def _upsert_subsidy(conn, subsidy, now):
        existing = conn.execute("SELECT created FROM subsidies WHERE uuid = ?", (subsidy["uuid"],)).fetchone()
        created = existing["created"] if existing else now
        conn.execute(
            "INSERT OR REPLACE INTO subsidies (uuid, customer_uuid, doc, created, modified) VALUES (?, ?, ?, ?, ?)",
            (subsidy["uuid"], subsidy["enterprise_customer_uuid"], json.dumps(subsidy), created, now),
        )
        amount = subsidy["starting_balance"]
        key = initial_deposit_key(subsidy["uuid"], amount)
        kept = conn.execute(
            "SELECT uuid FROM transactions WHERE subsidy_uuid = ? AND seeded = 1 AND idempotency_key = ?",
            (subsidy["uuid"], key),
        ).fetchone()
        conn.execute(
            "DELETE FROM transactions WHERE subsidy_uuid = ? AND seeded = 1 AND idempotency_key != ?",
            (subsidy["uuid"], key),
        )
        if kept or amount <= 0:
            if kept:
                conn.execute("UPDATE transactions SET unit = ? WHERE uuid = ?", (subsidy["unit"], kept["uuid"]))
            return
        conn.execute(
            "INSERT INTO transactions (uuid, subsidy_uuid, kind, seeded, state, idempotency_key, quantity, unit, "
            "metadata, created, modified) VALUES (?, ?, 'deposit', 1, 'committed', ?, ?, ?, '{}', ?, ?)",
            (str(uuid.uuid4()), subsidy["uuid"], key, amount, subsidy["unit"], created, created),
        )

    def reset(self):
        """Back to the seeded baseline: drop non-seeded transactions, every reversal and enrollment."""
        with self.write() as conn:
            conn.execute("DELETE FROM transactions WHERE seeded = 0")
            conn.execute(
                "UPDATE transactions SET reversal_uuid = NULL, reversal_state = NULL, reversal_idempotency_key = NULL,"
                " reversal_quantity = NULL, reversal_metadata = NULL, reversal_created = NULL,"
                " reversal_modified = NULL"
            )
            conn.execute("DELETE FROM enrollments")

    def wipe(self):
        """Forget everything, the seeded baseline included (the signing secret is kept)."""
        with self.write() as conn:
            for table in ("customers", "learners", "learner_links", "catalogs", "courses", "runs",
                          "subsidies", "transactions", "enrollments"):
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            conn.execute("DELETE FROM meta WHERE key != 'jwt_secret'")

    # --- seeded objects ---------------------------------------------------------------------------

    def _doc(self, sql, args):
        row = self._one(sql, args)
        return json.loads(row["doc"]) if row else None

    def customer(self, customer_uuid):
        return self._doc("SELECT doc FROM customers WHERE uuid = ?", (customer_uuid,))

    def learner(self, lms_user_id):
        return self._doc("SELECT doc FROM learners WHERE lms_user_id = ?", (lms_user_id,))

    def learners_where(self, *, email=None, username=None):
        docs = [json.loads(row["doc"]) for row in self._all("SELECT doc FROM learners ORDER BY lms_user_id")]
        if email is not None:
            docs = [doc for doc in docs if (doc.get("email") or "").lower() == email.lower()]
        if username is not None:
            docs = [doc for doc in docs if doc.get("username") == username]
        return docs

    def learner_links(self, *, customer_uuid=None, lms_user_ids=None, email=None, username=None):
        """Linked (learner, customer) records with their stable ids, ordered by id."""
        sql = ("SELECT l.id, l.lms_user_id, l.customer_uuid, l.position, l.created, learners.doc AS learner_doc,"
               " customers.doc AS customer_doc FROM learner_links l"
               " JOIN learners ON learners.lms_user_id = l.lms_user_id"
               " JOIN customers ON customers.uuid = l.customer_uuid WHERE 1 = 1")
        args = []
        if customer_uuid is not None:
            sql += " AND l.customer_uuid = ?"
            args.append(customer_uuid)
        if lms_user_ids is not None:
            sql += f" AND l.lms_user_id IN ({','.join('?' * len(lms_user_ids)) or 'NULL'})"
            args.extend(lms_user_ids)
        rows = self._all(sql + " ORDER BY l.id", args)
        for row in rows:
            row["learner"] = json.loads(row.pop("learner_doc"))
            row["customer"] = json.loads(row.pop("customer_doc"))
        if email is not None:
            rows = [row for row in rows if (row["learner"].get("email") or "").lower() == email.lower()]
        if username is not None:
            rows = [row for row in rows if row["learner"].get("username") == username]
        return rows

    def catalog(self, catalog_uuid):
        return self._doc("SELECT doc FROM catalogs WHERE uuid = ?", (catalog_uuid,))

    def catalogs_of_customer(self, customer_uuid):
        rows = self._all("SELECT doc FROM catalogs WHERE customer_uuid = ? ORDER BY uuid", (customer_uuid,))
        return [json.loads(row["doc"]) for row in rows]

    def course(self, course_key):
        return self._doc("SELECT doc FROM courses WHERE course_key = ?", (course_key,))

    def course_by_uuid(self, course_uuid):
        return self._doc("SELECT doc FROM courses WHERE course_uuid = ?", (course_uuid,))

    def run_owner(self, run_key_or_uuid):
        """``(course_key, run_key)`` of the run with this key or uuid, or None."""
        row = self._one(
            "SELECT course_key, run_key FROM runs WHERE run_key = ? OR run_uuid = ? LIMIT 1",
            (run_key_or_uuid, run_key_or_uuid),
        )
        return (row["course_key"], row["run_key"]) if row else None

    def subsidy(self, subsidy_uuid):
        row = self._one("SELECT doc, created, modified FROM subsidies WHERE uuid = ?", (subsidy_uuid,))
        if row is None:
            return None
        doc = json.loads(row["doc"])
        doc["created"], doc["modified"] = row["created"], row["modified"]
        return doc

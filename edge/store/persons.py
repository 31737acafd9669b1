"""Persons and their face templates (the whitelist a gate decides on), read in one snapshot."""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime

import numpy as np

from edge.records import PersonRecord, dumps, ts_text
from edge.store.db import Database, page_bounds
from edge.store.errors import StoreError
from edge.store.rows import person_from_row

log = logging.getLogger("edge.store")
MAX_TEMPLATE_DIM = 4096


class PersonTables(Database):
    """The persons and templates tables."""

    def upsert_person(self, p: PersonRecord) -> None:
        d = p.to_dict()
        cols = list(d)
        row = [dumps(d[c]) if c in ("allowed_gates", "directions") or (c == "schedule" and d[c] is not None)
               else d[c] for c in cols]
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "id")
        with self._tx() as conn:
            conn.execute(f"INSERT INTO persons ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
                         f"ON CONFLICT(id) DO UPDATE SET {updates}", row)

    def _persons(self, rows: list[sqlite3.Row]) -> list[PersonRecord]:
        return self._parse(rows, person_from_row, "person")

    def get_person(self, person_id: str) -> PersonRecord | None:
        found = self._persons(self._query("SELECT * FROM persons WHERE id = ?", (person_id,)))
        return found[0] if found else None

    def list_persons(self, query: str | None = None, limit: int = 100, offset: int = 0) -> list[PersonRecord]:
        """Persons by name; `query` matches part of the id, name or unit (case-insensitive)."""
        limit, offset = page_bounds(limit, offset)
        if query:
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = self._query("SELECT * FROM persons WHERE id LIKE ?1 ESCAPE '\\' "
                               "OR name LIKE ?1 ESCAPE '\\' OR unit LIKE ?1 ESCAPE '\\' "
                               "ORDER BY name COLLATE NOCASE, id LIMIT ?2 OFFSET ?3", (like, limit, offset))
        else:
            rows = self._query("SELECT * FROM persons ORDER BY name COLLATE NOCASE, id LIMIT ? OFFSET ?",
                               (limit, offset))
        return self._persons(rows)

    def count_persons(self) -> int:
        return int(self._query("SELECT count(*) FROM persons")[0][0])

    def delete_person(self, person_id: str) -> bool:
        """Delete a person with their templates, snapshots and passages (biometric data goes with them)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM snapshots WHERE event_id IN "
                         "(SELECT event_id FROM events WHERE person_id = ?)", (person_id,))
            conn.execute("DELETE FROM passages WHERE person_id = ?", (person_id,))
            deleted = conn.execute("DELETE FROM persons WHERE id = ?", (person_id,)).rowcount > 0
        if deleted:
            self.forget_deleted_pages()
        return deleted

    # ------------------------------------------------------------------------------------ templates

    def add_templates(self, person_id: str, embeddings: np.ndarray, model_id: str) -> int:
        """Store face embeddings (n, d) of one model for a person; returns how many were added."""
        arr = np.asarray(embeddings)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[0] == 0 or not 0 < arr.shape[1] <= MAX_TEMPLATE_DIM:
            raise ValueError(f"embeddings must be a non-empty (n, d) array, d <= {MAX_TEMPLATE_DIM}; "
                             f"got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise ValueError(f"embeddings must be real numbers, not {arr.dtype}")
        arr = np.ascontiguousarray(arr, dtype="<f4")
        if not np.isfinite(arr).all():
            raise ValueError("embeddings contain NaN or infinite values")
        if not isinstance(model_id, str) or not model_id:
            raise ValueError("model_id must be non-empty text")
        dim = int(arr.shape[1])
        now = ts_text(datetime.now(UTC))
        with self._tx() as conn:
            row = conn.execute("SELECT dim FROM templates WHERE model_id = ? LIMIT 1", (model_id,)).fetchone()
            if row is not None and row[0] != dim:
                raise ValueError(f"model {model_id} templates have {row[0]} dimensions, not {dim}")
            if conn.execute("SELECT 1 FROM persons WHERE id = ?", (person_id,)).fetchone() is None:
                raise StoreError(f"no person {person_id!r}: add the person before their templates")
            conn.executemany("INSERT INTO templates (person_id, model_id, dim, embedding, created_at) "
                             "VALUES (?, ?, ?, ?, ?)",
                             [(person_id, model_id, dim, v.tobytes(), now) for v in arr])
        return int(arr.shape[0])

    def replace_templates(self, person_id: str, embeddings: np.ndarray, model_id: str) -> int:
        """Replace the person's templates of this model (atomically)."""
        def swap(store: PersonTables) -> int:
            with store._tx() as conn:
                conn.execute("DELETE FROM templates WHERE person_id = ? AND model_id = ?",
                             (person_id, model_id))
            return store.add_templates(person_id, embeddings, model_id)
        return self.apply_in_transaction(swap)

    def load_templates(self, model_id: str) -> tuple[list[str], np.ndarray]:
        """(person id per row, (n, d) float32 matrix) of one model's templates, rows grouped by person."""
        try:
            return self._templates(self._read(), model_id)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _templates(self, conn: sqlite3.Connection, model_id: str) -> tuple[list[str], np.ndarray]:
        # streamed into one preallocated matrix: no list of 100,000 rows and blobs on the way
        n = int(conn.execute("SELECT count(*) FROM templates WHERE model_id = ?", (model_id,)).fetchone()[0])
        first = conn.execute("SELECT dim FROM templates WHERE model_id = ? ORDER BY person_id, id LIMIT 1",
                             (model_id,)).fetchone()
        if not n or first is None:
            return [], np.zeros((0, 0), dtype=np.float32)
        dim = int(first[0])
        matrix = np.empty((n, dim), np.float32)
        ids: list[str] = []
        skipped = 0
        for person_id, row_dim, blob in conn.execute("SELECT person_id, dim, embedding FROM templates WHERE "
                                                     "model_id = ? ORDER BY person_id, id", (model_id,)):
            if row_dim != dim or len(blob) != 4 * dim or len(ids) == n:
                skipped += 1
                continue
            matrix[len(ids)] = np.frombuffer(blob, dtype="<f4")
            ids.append(person_id)
        if skipped:
            log.error("%s templates of model %s have a mismatched size and are skipped", skipped, model_id)
        return ids, matrix[:len(ids)]

    def load_whitelist(self, model_id: str) -> tuple[list[str], np.ndarray, list[PersonRecord], str | None]:
        """Templates (as load_templates), every person and the whitelist version, read in one snapshot, so a
        push applied meanwhile is seen whole or not at all."""
        conn = self._read()
        own = conn is self._wconn  # inside this thread's write transaction: already one snapshot
        try:
            if not own:
                conn.execute("BEGIN")
            try:
                ids, matrix = self._templates(conn, model_id)
                persons = self._parse(conn.execute("SELECT * FROM persons"), person_from_row, "person")
                version = conn.execute("SELECT value FROM meta WHERE key = 'whitelist_version'").fetchone()
            finally:
                if not own:
                    conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return ids, matrix, persons, str(version[0]) if version else None

    def count_templates(self, model_id: str | None = None) -> int:
        if model_id is None:
            return int(self._query("SELECT count(*) FROM templates")[0][0])
        return int(self._query("SELECT count(*) FROM templates WHERE model_id = ?", (model_id,))[0][0])

// The journal's schema on PostgreSQL, in the schema that is first in the connection's search_path
// (so several journals can share a database, one per schema). It mirrors the SQLite journal
// (README "Storage format"): the same columns, the same hash chain, plus the head row that orders
// concurrent writers (notes/postgres-journal.md, design C).
//
//   CREATE TABLE taskjournal_meta (          -- identifies a taskjournal journal
//     id             int PRIMARY KEY CHECK (id = 1),
//     application_id int NOT NULL,           -- 0x544A524E "TJRN", as SQLite's application_id
//     schema_version int NOT NULL);          -- kSchemaVersion
//   CREATE TABLE events (
//     seq         bigint PRIMARY KEY CHECK (seq > 0),  -- 1, 2, 3, ... without gaps, commit order
//     type        text   NOT NULL,   -- task_created | task_updated | cancel_requested | ...
//     version     int    NOT NULL,   -- payload version
//     recorded_at bigint NOT NULL,   -- microseconds since the Unix epoch, UTC
//     session_id  bytea  NOT NULL,   -- the ids' bytes exactly as SQLite stores them (any byte)
//     task_id     bytea  NOT NULL,
//     payload     bytea  NOT NULL,   -- cereal portable binary (grammar: events/codec.cpp)
//     hash        bytea  NOT NULL CHECK (octet_length(hash) = 32));  -- the SQLite chain
//   CREATE INDEX events_by_task ON events (task_id, seq);
//   CREATE INDEX events_by_session ON events (session_id, seq);  -- a registry loads a session
//   CREATE TABLE checkpoints (...); CREATE TABLE checkpoint_chunks (...);  -- as in SQLite
//   CREATE TABLE journal_head (              -- one row: the newest event and its hash
//     id   int    PRIMARY KEY CHECK (id = 1),
//     seq  bigint NOT NULL,                  -- 0 for an empty journal
//     hash bytea  NOT NULL);                 -- 32 zero bytes for an empty journal
//   triggers: events reject UPDATE, DELETE and TRUNCATE ('taskjournal events are immutable');
//   journal_head rejects DELETE, TRUNCATE and a seq that moves backwards.
//
// An append of rows expected+1 .. expected+n is one transaction (store/postgres/engine.cpp):
//   BEGIN; SELECT seq, hash FROM journal_head WHERE id = 1 FOR UPDATE;   -- the write lock
//   ... the caller catches up to that head and decides ...
//   WITH h AS (UPDATE journal_head SET seq = seq + n, hash = <hash of the last row>
//              WHERE id = 1 AND seq = <expected> RETURNING seq),
//        moved AS (<1 if h has a row; else an error naming the conflict>)
//   INSERT INTO events SELECT <expected + 1>, <first row> FROM moved;
//   INSERT INTO events VALUES (<row k>);  ...  SELECT pg_notify(<channel>, '<last seq>'); COMMIT
// so rows are only ever inserted behind a head that moved to cover them. The head row's lock
// serializes appenders until commit and rolls back with them, so seq is gap-free and in commit
// order: a reader tailing seq > N never skips a later commit (notes/postgres-journal.md, design C).
#pragma once

#include <cstdint>
#include <string>

#include "store/engine.hpp"

namespace taskjournal::store::postgres {

class Connection;

// The journal's application id and schema version are store::kApplicationId and
// store::kSchemaVersion (store/engine.hpp), the same as the SQLite file's.

/// Makes sure the first schema of `conn`'s search_path holds a taskjournal journal, creating it
/// when that schema has none of its tables (under an advisory lock, so concurrent first opens
/// create it once). Returns the schema's name. Throws Error(Corrupt) when the schema holds
/// tables of the same names that are not a taskjournal journal, Error(Unsupported) for a journal
/// of a newer schema version, Error(Storage) when no schema of the search_path exists or the
/// server fails. `create` false: a missing journal is Error(NotFound) instead.
std::string ensure_schema(Connection& conn, bool create = true);

/// `name` quoted as an SQL identifier ("a""b").
std::string quote_identifier(const std::string& name);

/// The tables an archive adds (README "Archiving"), and the delete trigger that lets the archived
/// prefix go: `quoted` is the quoted schema. Idempotent.
std::string anchor_schema_sql(const std::string& quoted);

}  // namespace taskjournal::store::postgres

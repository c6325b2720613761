#include "store/postgres/schema.hpp"

#include <charconv>
#include <set>
#include <string_view>

#include "store/postgres/pq.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal::store::postgres {
namespace {

// {s} is the quoted schema: every name is qualified, so the triggers keep working for a session
// whose search_path differs from the one that created them.
const char* const kSchemaSql = R"sql(
CREATE TABLE {s}.taskjournal_meta (
  id             int PRIMARY KEY CHECK (id = 1),
  application_id int NOT NULL,
  schema_version int NOT NULL
);
CREATE TABLE {s}.events (
  seq         bigint PRIMARY KEY CHECK (seq > 0),
  type        text   NOT NULL,
  version     int    NOT NULL,
  recorded_at bigint NOT NULL,
  session_id  bytea  NOT NULL,
  task_id     bytea  NOT NULL,
  payload     bytea  NOT NULL,
  hash        bytea  NOT NULL CHECK (octet_length(hash) = 32)
);
CREATE INDEX events_by_task ON {s}.events (task_id, seq);
CREATE INDEX events_by_session ON {s}.events (session_id, seq);
CREATE TABLE {s}.checkpoints (
  seq        bigint PRIMARY KEY,
  hash       bytea  NOT NULL,
  format     bigint NOT NULL,
  chunks     bigint NOT NULL,
  tasks      bigint NOT NULL,
  messages   bigint NOT NULL,
  created_at bigint NOT NULL
);
CREATE TABLE {s}.checkpoint_chunks (
  seq    bigint NOT NULL,
  n      bigint NOT NULL,
  data   bytea  NOT NULL,
  digest bytea  NOT NULL,
  PRIMARY KEY (seq, n)
);
CREATE TABLE {s}.journal_head (
  id   int    PRIMARY KEY CHECK (id = 1),
  seq  bigint NOT NULL CHECK (seq >= 0),
  hash bytea  NOT NULL CHECK (octet_length(hash) = 32)
);
INSERT INTO {s}.journal_head VALUES (1, 0, '\x0000000000000000000000000000000000000000000000000000000000000000');

CREATE FUNCTION {s}.taskjournal_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'taskjournal events are immutable' USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER events_no_update BEFORE UPDATE ON {s}.events
  FOR EACH ROW EXECUTE FUNCTION {s}.taskjournal_immutable();
CREATE TRIGGER events_no_delete BEFORE DELETE ON {s}.events
  FOR EACH ROW EXECUTE FUNCTION {s}.taskjournal_immutable();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON {s}.events
  FOR EACH STATEMENT EXECUTE FUNCTION {s}.taskjournal_immutable();
CREATE TRIGGER head_no_delete BEFORE DELETE OR TRUNCATE ON {s}.journal_head
  FOR EACH STATEMENT EXECUTE FUNCTION {s}.taskjournal_immutable();

CREATE FUNCTION {s}.taskjournal_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id <> OLD.id OR NEW.seq < OLD.seq THEN
    RAISE EXCEPTION 'taskjournal journal_head only moves forward' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER head_forward BEFORE UPDATE ON {s}.journal_head
  FOR EACH ROW EXECUTE FUNCTION {s}.taskjournal_head_forward();
)sql";

std::string replace_all(std::string text, std::string_view from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

const char* const kAnchorSchemaSql = R"sql(
CREATE TABLE IF NOT EXISTS {s}.anchor (
  id      int    PRIMARY KEY CHECK (id = 1),
  seq     bigint NOT NULL,
  hash    bytea  NOT NULL CHECK (octet_length(hash) = 32),
  archive text   NOT NULL
);
CREATE TABLE IF NOT EXISTS {s}.anchor_tasks (
  task_id    bytea  PRIMARY KEY,
  session_id bytea  NOT NULL,
  chunk      bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS anchor_tasks_by_session ON {s}.anchor_tasks (session_id);
CREATE OR REPLACE FUNCTION {s}.taskjournal_delete_archived() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.seq > (SELECT coalesce(max(seq), 0) FROM {s}.anchor) THEN
    RAISE EXCEPTION 'taskjournal events are immutable' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN OLD;
END $$;
DROP TRIGGER IF EXISTS events_no_delete ON {s}.events;
CREATE TRIGGER events_no_delete BEFORE DELETE ON {s}.events
  FOR EACH ROW EXECUTE FUNCTION {s}.taskjournal_delete_archived();
)sql";

enum class Found { Nothing, Journal };

// Classifies what the schema holds; throws for anything that is not a usable journal.
Found inspect(Connection& conn, const std::string& schema) {
  const std::string where = conn.where("schema " + schema);
  Result tables = conn.exec_params(
      "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
      "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = ANY "
      "('{taskjournal_meta,events,journal_head}'::text[])",
      Params().text(schema), true);
  std::set<std::string> present;
  for (int r = 0; r < tables.rows(); ++r) present.emplace(tables.bytes(r, 0));
  if (present.empty()) return Found::Nothing;
  if (!present.count("taskjournal_meta")) {
    throw Error(ErrorCode::Corrupt,
                where + ": not a taskjournal journal: it has a table named " + *present.begin() +
                    " but no taskjournal_meta; point search_path at another schema");
  }
  const std::string q = quote_identifier(schema);
  Result meta;
  try {
    meta = conn.exec("SELECT application_id, schema_version FROM " + q +
                     ".taskjournal_meta WHERE id = 1");
  } catch (const Error& e) {
    if (!conn.usable()) throw;
    throw Error(ErrorCode::Corrupt, where + ": not a taskjournal journal: taskjournal_meta is " +
                                        "not taskjournal's (" + e.what() + ")");
  }
  if (meta.rows() != 1) {
    throw Error(ErrorCode::Corrupt, where + ": not a taskjournal journal: taskjournal_meta has " +
                                        std::to_string(meta.rows()) + " rows instead of one");
  }
  const std::string app(meta.bytes(0, 0));
  if (app != std::to_string(kApplicationId)) {
    throw Error(ErrorCode::Corrupt, where + ": not a taskjournal journal: application id " + app +
                                        " instead of " + std::to_string(kApplicationId));
  }
  const std::string_view version_text = meta.bytes(0, 1);
  long version = 0;
  const auto parsed =
      std::from_chars(version_text.data(), version_text.data() + version_text.size(), version);
  if (parsed.ec != std::errc() || parsed.ptr != version_text.data() + version_text.size()) {
    throw Error(ErrorCode::Corrupt, where + ": not a taskjournal journal: schema_version \"" +
                                        std::string(version_text) + "\"");
  }
  if (version > kSchemaVersion) {
    throw Error(ErrorCode::Unsupported,
                where + ": journal schema version " + std::to_string(version) +
                    " is newer than this taskjournal's (" + std::to_string(kSchemaVersion) +
                    "): open it with a newer taskjournal");
  }
  if (version < 1) {
    throw Error(ErrorCode::Corrupt,
                where + ": bad journal schema version " + std::to_string(version));
  }
  for (const char* table : {"events", "journal_head"}) {
    if (!present.count(table)) {
      throw Error(ErrorCode::Corrupt,
                  where + ": damaged taskjournal journal: table " + table + " is missing");
    }
  }
  return Found::Journal;
}

}  // namespace

std::string quote_identifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string ensure_schema(Connection& conn, bool create) {
  Result current = conn.exec("SELECT current_schema()");
  if (current.rows() != 1 || current.is_null(0, 0)) {
    throw Error(ErrorCode::Storage,
                conn.where("open journal") +
                    ": no schema of the search_path exists: create one (CREATE SCHEMA name) or "
                    "set search_path (e.g. options='-c search_path=name' in the connection "
                    "string)");
  }
  const std::string schema(current.bytes(0, 0));
  if (inspect(conn, schema) == Found::Journal) return schema;
  if (!create) {
    throw Error(ErrorCode::NotFound,
                conn.where("schema " + schema) + ": no taskjournal journal in this schema");
  }
  // First use: create it once, even when several processes open at the same moment.
  conn.exec("BEGIN");
  try {
    conn.exec_params("SELECT pg_advisory_xact_lock($1)", Params().int8(kApplicationId));
    if (inspect(conn, schema) == Found::Nothing) {
      const std::string q = quote_identifier(schema);
      conn.exec(replace_all(kSchemaSql, "{s}", q));
      conn.exec_params("INSERT INTO " + q +
                           ".taskjournal_meta (id, application_id, schema_version) "
                           "VALUES (1, $1, $2)",
                       Params().int4(kApplicationId).int4(kNewJournalSchemaVersion));
    }
    conn.exec("COMMIT");
  } catch (...) {
    if (conn.usable() && !conn.idle()) {
      try {
        conn.exec("ROLLBACK");
      } catch (...) {  // the original error is the one to report
      }
    }
    throw;
  }
  return schema;
}

std::string anchor_schema_sql(const std::string& quoted) {
  return replace_all(kAnchorSchemaSql, "{s}", quoted);
}

}  // namespace taskjournal::store::postgres

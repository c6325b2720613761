#include "store/postgres/pg_journal.hpp"

#include "store/postgres/pq.hpp"
#include "store/postgres/schema.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal::store::postgres {
namespace {

constexpr std::size_t kHashSize = 32;
constexpr std::size_t kMaxIdentifier = 63;  // NAMEDATALEN - 1: channel names are identifiers

const char* const kHead = "tj_head";
const char* const kAppendFirst = "tj_append_first";
const char* const kAppendMore = "tj_append_more";
const char* const kNotify = "tj_notify";
// The error text the first INSERT raises when journal_head is not at the expected seq.
const char* const kConflictMarker = "taskjournal append conflict: journal_head moved";

}  // namespace

PgJournal::PgJournal(PgJournalConfig config) : config_(std::move(config)) { connect(); }

PgJournal::~PgJournal() = default;

void PgJournal::connect() {
  conn_.reset();
  auto conn = std::make_unique<Connection>(config_.conninfo);
  target_ = conn->target();
  conn->exec(std::string("SET synchronous_commit = ") +
             (config_.synchronous_commit ? "on" : "off"));
  conn->exec("SET lock_timeout = " + std::to_string(config_.lock_timeout.count()));
  // A reconnect never creates: a server without the journal (a failover to an empty or wrong
  // server, a dropped schema) must not silently become a new, empty journal.
  schema_ = ensure_schema(*conn, config_.create && !opened_);
  opened_ = true;
  quoted_ = quote_identifier(schema_);
  channel_ = "taskjournal_" + schema_;
  if (channel_.size() > kMaxIdentifier) {
    std::size_t cut = kMaxIdentifier;  // not inside a UTF-8 sequence
    while (cut > 0 && (static_cast<unsigned char>(channel_[cut]) & 0xC0) == 0x80) --cut;
    channel_.resize(cut);
  }
  const std::string& s = quoted_;
  conn->prepare(kHead, "SELECT seq, hash FROM " + s + ".journal_head WHERE id = 1", {});
  const std::string columns =
      " (seq, type, version, recorded_at, session_id, task_id, payload, hash) ";
  // Rows are only inserted behind a head that moved to cover them (schema.hpp). When the head
  // has moved elsewhere, the statement fails on purpose (the cast of kConflictMarker): the whole
  // append then aborts, which releases the head row's lock without a commit to flush.
  conn->prepare(kAppendFirst,
                "WITH h AS (UPDATE " + s + ".journal_head SET seq = seq + $1, hash = $2 " +
                    "WHERE id = 1 AND seq = $3 RETURNING seq), moved AS (SELECT CAST(CASE WHEN "
                    "count(*) = 0 THEN '" +
                    kConflictMarker + "' ELSE '1' END AS int) AS ok FROM h) INSERT INTO " + s +
                    ".events" + columns +
                    "SELECT $3 + 1, $4, $5, $6, $7, $8, $9, $10 FROM moved WHERE ok = 1 "
                    "RETURNING seq",
                {Oid::Int8, Oid::Bytea, Oid::Int8, Oid::Text, Oid::Int4, Oid::Int8, Oid::Text,
                 Oid::Text, Oid::Bytea, Oid::Bytea});
  conn->prepare(
      kAppendMore,
      "INSERT INTO " + s + ".events" + columns + "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      {Oid::Int8, Oid::Text, Oid::Int4, Oid::Int8, Oid::Text, Oid::Text, Oid::Bytea, Oid::Bytea});
  conn->prepare(kNotify, "SELECT pg_notify($1, $2)", {Oid::Text, Oid::Text});
  conn_ = std::move(conn);
}

Connection& PgJournal::connection() {
  if (!conn_ || !conn_->usable()) connect();
  return *conn_;
}

Head PgJournal::head() {
  Connection& conn = connection();
  Result r = conn.exec_prepared(kHead, Params());
  if (r.rows() != 1 || r.bytes(0, 1).size() != kHashSize) {
    throw Error(ErrorCode::Corrupt, conn.where("schema " + schema_) +
                                        ": damaged taskjournal journal: journal_head has " +
                                        std::to_string(r.rows()) + " rows or a bad hash");
  }
  return Head{r.int8(0, 0), std::string(r.bytes(0, 1))};
}

bool PgJournal::changed_since(const Head& known) { return head() != known; }

std::int64_t PgJournal::read_after(std::int64_t after,
                                   const std::function<void(const EventView&)>& on_event,
                                   std::int64_t up_to) {
  Connection& conn = connection();
  // COPY takes no parameters; both bounds are integers formatted here.
  const std::string sql =
      "COPY (SELECT seq, type, version, recorded_at, session_id, task_id, payload, hash FROM " +
      quoted_ + ".events WHERE seq > " + std::to_string(after) +
      " AND seq <= " + std::to_string(up_to) + " ORDER BY seq) TO STDOUT (FORMAT binary)";
  return conn.copy_out(sql, [&](const CopyRow& row) {
    if (row.columns() != 8) {
      throw Error(ErrorCode::Corrupt, conn.where("read events") + ": a row has " +
                                          std::to_string(row.columns()) + " columns");
    }
    const EventView view{.seq = static_cast<std::uint64_t>(row.int8(0)),
                         .type = row.bytes(1),
                         .version = row.int4(2),
                         .recorded_at = row.int8(3),
                         .session_id = row.bytes(4),
                         .task_id = row.bytes(5),
                         .payload = row.bytes(6),
                         .hash = row.bytes(7)};
    on_event(view);
  });
}

void PgJournal::begin_write(const Head& expected) {
  if (writing_) {
    throw Error(ErrorCode::InvalidArgument,
                "postgresql " + target_ + ": begin_write: a write is already open");
  }
  if (expected.seq < 0 || expected.hash.size() != kHashSize) {
    throw Error(ErrorCode::InvalidArgument, "postgresql " + target_ +
                                                ": begin_write: bad expected head (seq " +
                                                std::to_string(expected.seq) + ", hash of " +
                                                std::to_string(expected.hash.size()) + " bytes)");
  }
  writing_ = true;
  expected_ = expected;
  pending_.clear();
}

void PgJournal::append(EventRow row) {
  const std::string where = "postgresql " + target_ + ": append event " + std::to_string(row.seq);
  if (!writing_) throw Error(ErrorCode::InvalidArgument, where + ": no write is open");
  const std::int64_t next = expected_.seq + 1 + static_cast<std::int64_t>(pending_.size());
  if (row.seq != next) {
    throw Error(ErrorCode::InvalidArgument,
                where + ": out of sequence, the next is " + std::to_string(next));
  }
  if (row.hash.size() != kHashSize) {
    throw Error(ErrorCode::InvalidArgument,
                where + ": hash of " + std::to_string(row.hash.size()) + " bytes instead of 32");
  }
  pending_.push_back(std::move(row));
}

void PgJournal::rollback() noexcept {
  writing_ = false;
  pending_.clear();
}

CommitResult PgJournal::commit() {
  if (!writing_) {
    throw Error(ErrorCode::InvalidArgument, "postgresql " + target_ + ": commit: no write is open");
  }
  struct Close {  // the write is over whatever happens
    PgJournal& j;
    ~Close() { j.rollback(); }
  } close{*this};
  if (pending_.empty()) return CommitResult::Committed;

  Connection& conn = connection();
  const auto n = static_cast<std::int64_t>(pending_.size());
  const std::int64_t last = pending_.back().seq;
  const std::string last_text = std::to_string(last);
  std::vector<Params> params(pending_.size() + 1);  // alive until sync(): they own the integers
  std::vector<Result> results;
  {
    // No BEGIN/COMMIT: the statements up to the Sync are one implicit transaction, which the
    // server commits at the Sync or, after a failure, rolls back there (no ROLLBACK round trip).
    Pipeline pipe(conn);
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      const EventRow& r = pending_[i];
      Params& p = params[i];
      if (i == 0) p.int8(n).bytes(pending_.back().hash).int8(expected_.seq);
      if (i > 0) p.int8(r.seq);
      p.text(r.type)
          .int4(r.version)
          .int8(r.recorded_at)
          .text(r.session_id)
          .text(r.task_id)
          .bytes(r.payload)
          .bytes(r.hash);
      pipe.send_prepared(i == 0 ? kAppendFirst : kAppendMore, p);
    }
    if (config_.notify) {
      params.back().text(channel_).text(last_text);
      pipe.send_prepared(kNotify, params.back());
    }
    results = pipe.sync();
  }
  const std::string doing = "append events " + std::to_string(expected_.seq + 1) + ".." + last_text;
  const Result& first = results[0];
  if (!first.ok() && first.message().find(kConflictMarker) != std::string::npos) {
    return CommitResult::Conflict;  // another writer moved the head; the append was rolled back
  }
  if (const int failed = Pipeline::first_failure(results); failed >= 0) {
    conn.fail(doing, results[static_cast<std::size_t>(failed)]);
  }
  if (first.rows() != 1 || first.int8(0, 0) != expected_.seq + 1) {
    throw Error(ErrorCode::Corrupt,
                conn.where(doing) + ": the first row was stored as another seq");
  }
  return CommitResult::Committed;
}

}  // namespace taskjournal::store::postgres

#include "store/postgres/engine.hpp"

#include <algorithm>
#include <climits>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "events/checkpoint.hpp"
#include "store/postgres/change_signal.hpp"
#include "store/postgres/pq.hpp"
#include "store/postgres/schema.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal::store::postgres {
namespace {

constexpr std::size_t kHashSize = 32;
// At most this many rows ride along with the write lock (begin_write); a longer tail streams.
constexpr int kTailRows = 1000;
constexpr std::size_t kMaxIdentifier = 63;  // NAMEDATALEN - 1: channel names are identifiers

const char* const kHead = "tj_head";
const char* const kHeadForUpdate = "tj_head_for_update";
const char* const kRowsAfter = "tj_rows_after";
const char* const kHashOf = "tj_hash_of";
const char* const kAppendFirst = "tj_append_first";
const char* const kAppendMore = "tj_append_more";
const char* const kNotify = "tj_notify";
const char* const kTaskRows = "tj_task_rows";
const char* const kSessionRows = "tj_session_rows";
const char* const kMeta = "tj_meta";
// The error text the first INSERT raises when journal_head is not where the lock found it.
const char* const kConflictMarker = "taskjournal append conflict: journal_head moved";

struct Head {
  std::uint64_t seq = 0;
  std::string hash;
  friend bool operator==(const Head&, const Head&) = default;
};

// Owned copies of a row appended in the open write, sent at commit.
struct PendingRow {
  std::uint64_t seq;
  std::string type;
  std::int64_t version;
  std::int64_t recorded_at;
  std::string session_id;
  std::string task_id;
  std::string payload;
  std::string hash;
};

// Thrown by a scan sink that wants no more rows, to leave copy_out early.
struct StopScan {};

class PgEngine final : public Engine {
 public:
  explicit PgEngine(const EngineConfig& config) : config_(config) {
    if (config_.busy_timeout.count() < 0) {
      throw Error(ErrorCode::InvalidArgument, "invalid argument: busy_timeout is negative (" +
                                                  std::to_string(config_.busy_timeout.count()) +
                                                  " ms)");
    }
    if (config_.exclusive) {
      throw Error(ErrorCode::InvalidArgument,
                  "invalid argument: Options::exclusive is a SQLite file mode; a PostgreSQL "
                  "journal is shared by design: open it without exclusive");
    }
    connect();
  }
  ~PgEngine() override { PgEngine::rollback(); }

  const std::string& name() const noexcept override { return name_; }

  // LISTEN on the channel every commit notifies, with a read at least every second (or every
  // `interval`, if longer) in case a notification was missed.
  std::unique_ptr<ChangeSignal> change_signal(std::chrono::milliseconds interval,
                                              ProblemReporter report) override {
    return listen_for_changes(config_.location, channel_,
                              std::max(interval, std::chrono::milliseconds{1000}),
                              std::move(report));
  }

  bool changed_by_others() override {
    // Inside a locked write the locked head is the newest state: no other writer can move it.
    const Head now = in_write_ && !optimistic_ ? locked_ : read_head();
    const bool changed = !known_ || *known_ != now;
    known_ = now;
    seen_seq_ = now.seq;
    return changed;
  }

  void scan(std::uint64_t after_seq, const std::function<bool(const EventRow&)>& sink) override {
    // A short tail (a registry catching up) comes in one prepared statement: the rows
    // begin_write() fetched under the lock, or a fetch now. A longer one streams with COPY.
    Result fetched;
    const bool prefetched = in_write_ && tail_ && after_seq == tail_after_;
    if (!prefetched) {
      Params p;
      p.int8(static_cast<std::int64_t>(after_seq));
      fetched = connection().exec_prepared(kRowsAfter, p);
    }
    const Result& tail = prefetched ? tail_ : fetched;
    for (int i = 0; i < tail.rows(); ++i) {
      const EventRow row = row_of(tail, i);
      if (!sink(row)) return;
      after_seq = row.seq;
    }
    if (tail.rows() < kTailRows) return;
    // More than one statement fetched: the rest streams.
    Connection& conn = connection();
    const std::string sql =
        "COPY (SELECT seq, type, version, recorded_at, session_id, task_id, payload, hash FROM " +
        quoted_ + ".events WHERE seq > " + std::to_string(after_seq) +
        " ORDER BY seq) TO STDOUT (FORMAT binary)";
    // Inside a write a cancelled COPY would abort the transaction: read to the end instead.
    bool wanted = true;
    try {
      conn.copy_out(sql, [&](const CopyRow& row) {
        if (!wanted) return;
        const EventRow view = to_row(conn, row);
        if (!sink(view)) {
          wanted = false;
          if (!in_write_) throw StopScan{};
        }
      });
    } catch (const StopScan&) {
    }
  }

  void scan_task(std::string_view task_id, std::uint64_t up_to_seq,
                 const std::function<bool(const EventRow&, std::string_view)>& sink) override {
    scan_linked(kTaskRows, task_id, up_to_seq, sink);
  }

  void scan_session(std::string_view session_id, std::uint64_t up_to_seq,
                    const std::function<bool(const EventRow&, std::string_view)>& sink) override {
    scan_linked(kSessionRows, session_id, up_to_seq, sink);
  }

  // The rows the prepared statement `which` selects by `key`, each with its predecessor's hash.
  void scan_linked(const char* which, std::string_view key, std::uint64_t up_to_seq,
                   const std::function<bool(const EventRow&, std::string_view)>& sink) {
    Connection& conn = connection();
    Params params;
    params.bytes(key).int8(static_cast<std::int64_t>(
        std::min<std::uint64_t>(up_to_seq, static_cast<std::uint64_t>(INT64_MAX))));
    const Result r = conn.exec_prepared(which, params);
    const std::string genesis = genesis_hash();
    for (int i = 0; i < r.rows(); ++i) {
      const EventRow row = row_of(r, i);
      const std::string_view prev = row.seq == 1
                                        ? std::string_view(genesis)
                                        : (r.is_null(i, 8) ? std::string_view() : r.bytes(i, 8));
      if (!sink(row, prev)) return;
    }
  }

  std::string stored_hash(std::uint64_t seq) override {
    Connection& conn = connection();
    Params params;
    params.int8(static_cast<std::int64_t>(seq));
    const Result r = conn.exec_prepared(kHashOf, params);
    return r.rows() == 1 ? std::string(r.bytes(0, 0)) : std::string();
  }

  std::uint64_t newest_seq() override {
    Connection& conn = connection();
    const Result r =
        conn.exec_params("SELECT coalesce(max(seq), 0) FROM " + quoted_ + ".events", Params());
    return static_cast<std::uint64_t>(r.int8(0, 0));
  }

  int schema_version() override {
    Connection& conn = connection();
    const Result r = conn.exec_prepared(kMeta, Params());
    return r.rows() == 1 ? r.int4(0, 0) : 0;
  }

  void begin_optimistic_write(std::uint64_t expected_seq) override {
    if (config_.read_only) {
      throw Error(ErrorCode::ReadOnly, name_ + ": journal opened read-only");
    }
    if (in_write_) {
      throw Error(ErrorCode::Storage, name_ + ": begin write: a write is already open");
    }
    Connection& conn = connection();
    pending_.clear();
    tail_ = Result();
    write_conn_ = &conn;
    in_write_ = true;
    optimistic_ = true;
    locked_ = Head{expected_seq, {}};  // the head the commit expects (only its seq is compared)
  }

  void begin_write() override {
    if (config_.read_only) {
      throw Error(ErrorCode::ReadOnly, name_ + ": journal opened read-only");
    }
    if (in_write_) {
      throw Error(ErrorCode::Storage, name_ + ": begin write: a write is already open");
    }
    Connection& conn = connection();
    pending_.clear();
    tail_ = Result();
    // One round trip: the transaction, the write lock, and the rows committed since the head
    // this engine saw last, which the journal reads next to catch up (scan()).
    const std::uint64_t after = seen_seq_;
    std::vector<Result> results;
    {
      Pipeline pipe(conn);
      pipe.send("BEGIN", Params());
      pipe.send_prepared(kHeadForUpdate, Params());
      Params p;
      p.int8(static_cast<std::int64_t>(after));
      pipe.send_prepared(kRowsAfter, p);
      results = pipe.sync(/*keep_open=*/true);
    }
    if (const int failed = Pipeline::first_failure(results); failed >= 0) {
      end_transaction(conn);
      conn.fail("begin write (lock journal_head)", results[static_cast<std::size_t>(failed)]);
    }
    write_conn_ = &conn;
    in_write_ = true;
    const Result& head = results[1];
    if (head.rows() != 1 || head.bytes(0, 1).size() != kHashSize) {
      rollback();
      throw Error(ErrorCode::Corrupt, name_ + ": damaged taskjournal journal: journal_head has " +
                                          std::to_string(head.rows()) + " rows or a bad hash");
    }
    locked_ = Head{static_cast<std::uint64_t>(head.int8(0, 0)), std::string(head.bytes(0, 1))};
    tail_after_ = after;
    tail_ = std::move(results[2]);
  }

  void append(const EventRow& row) override {
    ensure_in_write("append event " + std::to_string(row.seq));
    pending_.push_back(PendingRow{row.seq, std::string(row.type), row.version, row.recorded_at,
                                  std::string(row.session_id), std::string(row.task_id),
                                  std::string(row.payload), std::string(row.hash)});
  }

  void commit() override {
    ensure_in_write("commit");
    Connection& conn = *write_conn_;
    struct Close {  // the write is over whatever happens
      PgEngine& e;
      ~Close() { e.rollback(); }
    } close{*this};
    if (pending_.empty()) {
      if (optimistic_) return;  // nothing was begun on the server
      std::vector<Result> results;
      {
        Pipeline pipe(conn);
        pipe.send("COMMIT", Params());
        results = pipe.sync();
      }
      if (const int failed = Pipeline::first_failure(results); failed >= 0) {
        conn.fail("commit", results[static_cast<std::size_t>(failed)]);
      }
      return;
    }
    const auto n = static_cast<std::int64_t>(pending_.size());
    const auto expected = static_cast<std::int64_t>(locked_.seq);
    const std::string last_text = std::to_string(pending_.back().seq);
    const std::string doing = "append events " + std::to_string(expected + 1) + ".." + last_text;
    std::vector<Params> params(pending_.size() + 1);  // alive until sync(): they own integers
    std::vector<Result> results;
    {
      Pipeline pipe(conn);
      for (std::size_t i = 0; i < pending_.size(); ++i) {
        const PendingRow& r = pending_[i];
        Params& p = params[i];
        if (i == 0) p.int8(n).bytes(pending_.back().hash).int8(expected);
        if (i > 0) p.int8(static_cast<std::int64_t>(r.seq));
        p.text(r.type)
            .int4(static_cast<std::int32_t>(r.version))
            .int8(r.recorded_at)
            .bytes(r.session_id)
            .bytes(r.task_id)
            .bytes(r.payload)
            .bytes(r.hash);
        pipe.send_prepared(i == 0 ? kAppendFirst : kAppendMore, p);
      }
      params.back().text(channel_).text(last_text);
      pipe.send_prepared(kNotify, params.back());
      // Optimistic: no BEGIN was sent, so the statements up to the Sync are one implicit
      // transaction, committed there or, after a failure, rolled back there.
      if (!optimistic_) pipe.send("COMMIT", Params());
      results = pipe.sync();  // rolls back when a statement failed
    }
    if (const int failed = Pipeline::first_failure(results); failed >= 0) {
      const Result& bad = results[static_cast<std::size_t>(failed)];
      if (bad.message().find(kConflictMarker) != std::string::npos) {
        if (optimistic_) throw WriteConflict{};  // another writer appended first
        throw Error(ErrorCode::Corrupt, conn.where(doing) +
                                            ": journal_head moved while this write held its lock "
                                            "(another program writes to the journal's tables)");
      }
      conn.fail(doing, bad);
    }
    if (results[0].rows() != 1 || results[0].int8(0, 0) != expected + 1) {
      throw Error(ErrorCode::Corrupt,
                  conn.where(doing) + ": the first row was stored as another seq");
    }
    known_ = Head{pending_.back().seq, pending_.back().hash};
    seen_seq_ = known_->seq;
  }

  // ---- an archived prefix (README "Archiving"; schema.hpp: anchor, anchor_tasks) ----------

  std::optional<Anchor> anchor() override {
    Connection& conn = connection();
    if (!has_anchor_table(conn)) return std::nullopt;
    const Result r = conn.exec_params(
        "SELECT seq, hash, archive FROM " + quoted_ + ".anchor WHERE id = 1", Params());
    if (r.rows() == 0) return std::nullopt;
    return Anchor{.seq = static_cast<std::uint64_t>(r.int8(0, 0)),
                  .hash = std::string(r.bytes(0, 1)),
                  .archive = std::string(r.bytes(0, 2))};
  }

  void archive_prefix(const Anchor& anchor, const std::vector<AnchorTask>& tasks) override {
    if (!in_write_ || optimistic_ || !write_conn_) {
      throw Error(ErrorCode::Storage, name_ + ": archive the prefix: no locked write open");
    }
    Connection& conn = *write_conn_;
    conn.exec(anchor_schema_sql(quoted_));
    conn.exec_params("INSERT INTO " + quoted_ +
                         ".anchor (id, seq, hash, archive) VALUES (1, $1, $2, $3) "
                         "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, "
                         "archive = excluded.archive",
                     Params()
                         .int8(static_cast<std::int64_t>(anchor.seq))
                         .bytes(anchor.hash)
                         .text(anchor.archive));
    conn.exec("DELETE FROM " + quoted_ + ".anchor_tasks");
    {
      Pipeline pipe(conn);
      const std::string insert = "INSERT INTO " + quoted_ +
                                 ".anchor_tasks (task_id, session_id, chunk) VALUES ($1, $2, $3)";
      std::size_t queued = 0;
      for (const AnchorTask& t : tasks) {
        pipe.send(insert, Params().bytes(t.task_id).bytes(t.session_id).int8(t.chunk));
        if (++queued % 1000 == 0) {
          const auto results = pipe.sync(/*keep_open=*/true);
          if (const int failed = Pipeline::first_failure(results); failed >= 0) {
            conn.fail("record the anchor's tasks", results[static_cast<std::size_t>(failed)]);
          }
        }
      }
      const auto results = pipe.sync(/*keep_open=*/true);
      if (const int failed = Pipeline::first_failure(results); failed >= 0) {
        conn.fail("record the anchor's tasks", results[static_cast<std::size_t>(failed)]);
      }
    }
    const auto upto = static_cast<std::int64_t>(anchor.seq);
    conn.exec_params("DELETE FROM " + quoted_ + ".events WHERE seq <= $1", Params().int8(upto));
    conn.exec_params("DELETE FROM " + quoted_ + ".checkpoint_chunks WHERE seq < $1",
                     Params().int8(upto));
    conn.exec_params("DELETE FROM " + quoted_ + ".checkpoints WHERE seq < $1", Params().int8(upto));
  }

  std::string anchor_session_of(std::string_view task_id) override {
    Connection& conn = connection();
    if (!has_anchor_table(conn)) return {};
    const Result r =
        conn.exec_params("SELECT session_id FROM " + quoted_ + ".anchor_tasks WHERE task_id = $1",
                         Params().bytes(task_id));
    return r.rows() == 0 ? std::string() : std::string(r.bytes(0, 0));
  }

  std::optional<std::vector<std::int64_t>> anchor_chunks_of(std::string_view session_id) override {
    Connection& conn = connection();
    std::vector<std::int64_t> out;
    if (!has_anchor_table(conn)) return out;
    const Result r = conn.exec_params("SELECT DISTINCT chunk FROM " + quoted_ +
                                          ".anchor_tasks WHERE session_id = $1 ORDER BY chunk",
                                      Params().bytes(session_id));
    for (int i = 0; i < r.rows(); ++i) out.push_back(r.int8(i, 0));
    return out;
  }

  void scan_checkpoint_chunk(
      std::uint64_t seq, std::int64_t n,
      const std::function<void(std::string_view, std::string_view)>& sink) override {
    Connection& conn = connection();
    const Result r = conn.exec_params(
        "SELECT data, digest FROM " + quoted_ + ".checkpoint_chunks WHERE seq = $1 AND n = $2",
        Params().int8(static_cast<std::int64_t>(seq)).int8(n));
    if (r.rows() > 0) sink(r.bytes(0, 0), r.bytes(0, 1));
  }

  std::uint64_t stored_bytes() override {
    Connection& conn = connection();
    const Result r = conn.exec_params(
        "SELECT (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM "
        "pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = $1 AND c.relkind = 'r')::bigint",
        Params().text(schema_));
    return r.rows() == 0 ? 0 : static_cast<std::uint64_t>(r.int8(0, 0));
  }

  void raise_schema_version(int version) override {
    if (!in_write_ || optimistic_ || !write_conn_) {
      throw Error(ErrorCode::Storage, name_ + ": raise the schema version: no locked write open");
    }
    write_conn_->exec_params("UPDATE " + quoted_ +
                                 ".taskjournal_meta SET schema_version = $1 WHERE id = 1 AND "
                                 "schema_version < $1",
                             Params().int4(version));
  }

  void rollback() noexcept override {
    if (in_write_ && write_conn_ != nullptr && write_conn_ == conn_.get()) {
      try {
        end_transaction(*write_conn_);
      } catch (...) {
      }
    }
    in_write_ = false;
    optimistic_ = false;
    write_conn_ = nullptr;
    pending_.clear();
    tail_ = Result();
  }

  std::vector<CheckpointInfo> checkpoints() override {
    Connection& conn = connection();
    const Result r = conn.exec_params("SELECT seq, hash, format, chunks, tasks, messages FROM " +
                                          quoted_ + ".checkpoints ORDER BY seq DESC",
                                      Params());
    std::vector<CheckpointInfo> out;
    for (int i = 0; i < r.rows(); ++i) {
      out.push_back(CheckpointInfo{
          .seq = static_cast<std::uint64_t>(r.int8(i, 0)),
          .hash = std::string(r.bytes(i, 1)),
          .format = r.int8(i, 2),
          .chunks = r.int8(i, 3),
          .tasks = static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.int8(i, 4))),
          .messages = static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.int8(i, 5)))});
    }
    return out;
  }

  void scan_checkpoint(
      std::uint64_t seq,
      const std::function<void(std::int64_t, std::string_view, std::string_view)>& sink) override {
    Connection& conn = connection();
    conn.copy_out("COPY (SELECT n, data, digest FROM " + quoted_ +
                      ".checkpoint_chunks WHERE seq = " + std::to_string(seq) +
                      " ORDER BY n) TO STDOUT (FORMAT binary)",
                  [&](const CopyRow& row) { sink(row.int8(0), row.bytes(1), row.bytes(2)); });
  }

  bool write_checkpoint(const CheckpointInfo& info, std::int64_t created_at,
                        const std::function<void(const ChunkWriter&)>& produce, int keep) override {
    if (config_.read_only) {
      throw Error(ErrorCode::ReadOnly, name_ + ": journal opened read-only");
    }
    Connection& conn = connection();
    const auto seq = static_cast<std::int64_t>(info.seq);
    conn.exec("BEGIN");
    try {
      // Checkpoint writers serialize among themselves, not with event writers.
      conn.exec_params("SELECT pg_advisory_xact_lock($1, 1)", Params().int4(kApplicationId));
      const Result exists = conn.exec_params(
          "SELECT 1 FROM " + quoted_ + ".checkpoints WHERE seq = $1", Params().int8(seq));
      if (exists.rows() > 0) {
        conn.exec("ROLLBACK");
        return false;
      }
      const std::string insert_chunk = "INSERT INTO " + quoted_ +
                                       ".checkpoint_chunks (seq, n, data, digest) "
                                       "VALUES ($1, $2, $3, $4)";
      std::int64_t n = 0;
      produce([&](std::string_view data, std::string_view digest) {
        conn.exec_params(insert_chunk, Params().int8(seq).int8(n).bytes(data).bytes(digest));
        ++n;
      });
      conn.exec_params("INSERT INTO " + quoted_ +
                           ".checkpoints (seq, hash, format, chunks, tasks, messages, created_at) "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                       Params()
                           .int8(seq)
                           .bytes(info.hash)
                           .int8(static_cast<std::int64_t>(events::kCheckpointFormat))
                           .int8(n)
                           .int8(static_cast<std::int64_t>(info.tasks))
                           .int8(static_cast<std::int64_t>(info.messages))
                           .int8(created_at));
      // The anchor's checkpoint is never pruned: the live events begin after it.
      // Appended piece by piece: g++ 12 -O3 reports a false -Wrestrict for `"(" + ...` chains.
      std::string kept = "(SELECT seq FROM (SELECT seq FROM ";
      kept += quoted_;
      kept += ".checkpoints ORDER BY seq DESC LIMIT ";
      kept += std::to_string(keep);
      kept += ") newest";
      if (has_anchor_table(conn)) {
        kept += " UNION SELECT seq FROM ";
        kept += quoted_;
        kept += ".anchor";
      }
      kept += ")";
      conn.exec("DELETE FROM " + quoted_ + ".checkpoint_chunks WHERE seq NOT IN " + kept);
      conn.exec("DELETE FROM " + quoted_ + ".checkpoints WHERE seq NOT IN " + kept);
      conn.exec("COMMIT");
      return true;
    } catch (...) {
      try {
        end_transaction(conn);
      } catch (...) {
      }
      throw;
    }
  }

 private:
  bool has_anchor_table(Connection& conn) {
    const Result r = conn.exec_params("SELECT to_regclass($1) IS NOT NULL",
                                      Params().text(quoted_ + ".anchor"), true);
    return r.rows() == 1 && r.bytes(0, 0) == "t";
  }

  void connect() {
    conn_.reset();
    auto conn = std::make_unique<Connection>(config_.location);
    conn->exec(std::string("SET synchronous_commit = ") +
               (config_.durability == Durability::Full ? "on" : "off"));
    // lock_timeout 0 waits forever; SQLite's busy timeout 0 does not wait at all.
    const auto ms = std::clamp<std::int64_t>(config_.busy_timeout.count(), 1, INT_MAX);
    conn->exec("SET lock_timeout = " + std::to_string(ms));
    if (config_.read_only) conn->exec("SET default_transaction_read_only = on");
    // A reconnect never creates: a server without the journal (a failover to an empty or wrong
    // server, a dropped schema) must not silently become a new, empty journal.
    try {
      schema_ = ensure_schema(*conn, !config_.read_only && !opened_);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::NotFound && !opened_) {
        throw Error(ErrorCode::ReadOnly, std::string(e.what()) +
                                             "; a read-only open does not create one: open it "
                                             "once without read_only");
      }
      throw;
    }
    opened_ = true;
    quoted_ = quote_identifier(schema_);
    name_ = "postgresql " + conn->target() + " schema " + quoted_;
    channel_ = "taskjournal_" + schema_;
    if (channel_.size() > kMaxIdentifier) {
      std::size_t cut = kMaxIdentifier;  // not inside a UTF-8 sequence
      while (cut > 0 && (static_cast<unsigned char>(channel_[cut]) & 0xC0) == 0x80) --cut;
      channel_.resize(cut);
    }
    const std::string& s = quoted_;
    conn->prepare(kHead, "SELECT seq, hash FROM " + s + ".journal_head WHERE id = 1", {});
    conn->prepare(kHeadForUpdate,
                  "SELECT seq, hash FROM " + s + ".journal_head WHERE id = 1 FOR UPDATE", {});
    conn->prepare(kRowsAfter,
                  "SELECT seq, type, version, recorded_at, session_id, task_id, payload, hash "
                  "FROM " +
                      s + ".events WHERE seq > $1 ORDER BY seq LIMIT " + std::to_string(kTailRows),
                  {Oid::Int8});
    conn->prepare(kHashOf, "SELECT hash FROM " + s + ".events WHERE seq = $1", {Oid::Int8});
    conn->prepare(kMeta, "SELECT schema_version FROM " + s + ".taskjournal_meta WHERE id = 1", {});
    const std::string columns =
        "seq, type, version, recorded_at, session_id, task_id, payload, hash";
    for (const auto& [name, column] :
         {std::pair{kTaskRows, "task_id"}, std::pair{kSessionRows, "session_id"}}) {
      conn->prepare(name,
                    "SELECT e.seq, e.type, e.version, e.recorded_at, e.session_id, e.task_id, "
                    "e.payload, e.hash, p.hash FROM " +
                        s + ".events e LEFT JOIN " + s + ".events p ON p.seq = e.seq - 1 WHERE e." +
                        column + " = $1 AND e.seq <= $2 ORDER BY e.seq",
                    {Oid::Bytea, Oid::Int8});
    }
    // Rows are only inserted behind a head that moved to cover them (schema.hpp).
    conn->prepare(kAppendFirst,
                  "WITH h AS (UPDATE " + s + ".journal_head SET seq = seq + $1, hash = $2 " +
                      "WHERE id = 1 AND seq = $3 RETURNING seq), moved AS (SELECT CAST(CASE "
                      "WHEN count(*) = 0 THEN '" +
                      kConflictMarker + "' ELSE '1' END AS int) AS ok FROM h) INSERT INTO " + s +
                      ".events (" + columns +
                      ") SELECT $3 + 1, $4, $5, $6, $7, $8, $9, $10 FROM moved WHERE ok = 1 "
                      "RETURNING seq",
                  {Oid::Int8, Oid::Bytea, Oid::Int8, Oid::Text, Oid::Int4, Oid::Int8, Oid::Bytea,
                   Oid::Bytea, Oid::Bytea, Oid::Bytea});
    conn->prepare(
        kAppendMore,
        "INSERT INTO " + s + ".events (" + columns + ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        {Oid::Int8, Oid::Text, Oid::Int4, Oid::Int8, Oid::Bytea, Oid::Bytea, Oid::Bytea,
         Oid::Bytea});
    conn->prepare(kNotify, "SELECT pg_notify($1, $2)", {Oid::Text, Oid::Text});
    conn_ = std::move(conn);
    if (seen_seq_ == 0) seen_seq_ = read_head().seq;
  }

  // The connection, made again when the last one was lost.
  Connection& connection() {
    if (!conn_ || !conn_->usable()) {
      if (in_write_) {
        throw Error(ErrorCode::Storage,
                    name_ +
                        ": the connection was lost during the write, which the server rolled "
                        "back: nothing of it is stored; retry the call");
      }
      connect();
    }
    return *conn_;
  }

  void ensure_in_write(const std::string& doing) {
    if (!in_write_) {
      throw Error(ErrorCode::Storage, name_ + ": " + doing + ": no write transaction is open");
    }
    if (write_conn_ != conn_.get() || !conn_->usable()) {
      throw Error(ErrorCode::Storage,
                  name_ + ": " + doing +
                      ": the connection was lost during the write, which the server rolled "
                      "back: nothing of it is stored; retry the call");
    }
  }

  // Ends whatever transaction `conn` is in, writing nothing.
  static void end_transaction(Connection& conn) {
    if (conn.usable() && !conn.idle()) conn.exec("ROLLBACK");
  }

  Head read_head() {
    Connection& conn = connection();
    const Result r = conn.exec_prepared(kHead, Params());
    if (r.rows() != 1 || r.bytes(0, 1).size() != kHashSize) {
      throw Error(ErrorCode::Corrupt, name_ + ": damaged taskjournal journal: journal_head has " +
                                          std::to_string(r.rows()) + " rows or a bad hash");
    }
    return Head{static_cast<std::uint64_t>(r.int8(0, 0)), std::string(r.bytes(0, 1))};
  }

  // Row `i` of a result whose first eight columns are the events table's, in its order.
  static EventRow row_of(const Result& r, int i) {
    return EventRow{.seq = static_cast<std::uint64_t>(r.int8(i, 0)),
                    .type = r.bytes(i, 1),
                    .version = r.int4(i, 2),
                    .recorded_at = r.int8(i, 3),
                    .session_id = r.bytes(i, 4),
                    .task_id = r.bytes(i, 5),
                    .payload = r.bytes(i, 6),
                    .hash = r.bytes(i, 7)};
  }

  static EventRow to_row(const Connection& conn, const CopyRow& row) {
    if (row.columns() != 8) {
      throw Error(ErrorCode::Corrupt, conn.where("read events") + ": a row has " +
                                          std::to_string(row.columns()) + " columns");
    }
    return EventRow{.seq = static_cast<std::uint64_t>(row.int8(0)),
                    .type = row.bytes(1),
                    .version = row.int4(2),
                    .recorded_at = row.int8(3),
                    .session_id = row.bytes(4),
                    .task_id = row.bytes(5),
                    .payload = row.bytes(6),
                    .hash = row.bytes(7)};
  }

  EngineConfig config_;
  std::unique_ptr<Connection> conn_;
  bool opened_ = false;
  std::string schema_, quoted_, name_, channel_;
  std::optional<Head> known_;   // the head as the previous changed_by_others() saw it
  std::uint64_t seen_seq_ = 0;  // the newest head seen (open, change check, commit)
  bool in_write_ = false;
  bool optimistic_ = false;           // the write took no lock (begin_optimistic_write)
  Connection* write_conn_ = nullptr;  // the connection the write's transaction lives on
  Head locked_;                       // the head begin_write() locked
  Result tail_;                       // the rows after tail_after_ that begin_write() read
  std::uint64_t tail_after_ = 0;
  std::vector<PendingRow> pending_;
};

}  // namespace

std::unique_ptr<Engine> open(const EngineConfig& config) {
  return std::make_unique<PgEngine>(config);
}

}  // namespace taskjournal::store::postgres

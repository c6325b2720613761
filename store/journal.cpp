#include "store/journal.hpp"

#include <utility>

#include "store/open.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal::store {

Journal::Journal(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}

Journal::Journal(const JournalConfig& config)
    : Journal(open_engine(EngineConfig{.kind = config.kind,
                                       .location = config.path,
                                       .read_only = config.read_only,
                                       .durability = config.durability,
                                       .busy_timeout = config.busy_timeout,
                                       .exclusive = config.exclusive})) {}

Journal::~Journal() { rollback(); }

bool Journal::changed_by_others() {
  const bool changed = engine_->changed_by_others();
  return std::exchange(must_read_, false) || changed;
}

void Journal::restart() {
  verified_seq_ = 0;
  verified_hash_ = genesis_hash();
  pending_seq_ = 0;
  must_read_ = true;
}

void Journal::resume_after(std::uint64_t seq, std::string hash) {
  verified_seq_ = seq;
  verified_hash_ = std::move(hash);
  pending_seq_ = 0;
  must_read_ = true;
}

void Journal::read_new(const std::function<void(events::Event&&)>& sink,
                       const std::function<bool(std::string_view)>& wants_payload) {
  try {
    ThrowingReporter reporter(path());
    ChainVerifier verifier(verified_seq_, verified_hash_, reporter, hasher_);
    // One Event refilled for every row: its id strings keep their buffers (ids longer than the
    // small-string buffer, such as generated ones, cost an allocation per event otherwise). A
    // sink may move from it; assigning to a moved-from string is fine.
    events::Event event;
    engine_->scan(verified_seq_, [&](const EventRow& row) {
      verifier.check(row, event, !wants_payload || wants_payload(row.session_id));  // throws
      sink(std::move(event));
      verified_seq_ = row.seq;
      verified_hash_.assign(row.hash);  // checked equal to the hash computed
      return true;
    });
  } catch (...) {
    // The events after verified_seq_ are still unread: make the next call look again instead of
    // trusting the change check, so a bad event keeps failing reads rather than being skipped.
    must_read_ = true;
    throw;
  }
}

std::vector<JournalEntry> Journal::task_entries(std::string_view session_id,
                                                std::string_view task_id, std::uint64_t up_to_seq) {
  std::vector<JournalEntry> out;
  ThrowingReporter reporter(path());
  ChainVerifier verifier(0, genesis_hash(), reporter, hasher_);
  events::Event event;
  engine_->scan_task(task_id, up_to_seq, [&](const EventRow& row, std::string_view prev) {
    if (row.session_id != session_id) return true;  // task ids are unique across sessions
    verifier.check_linked(row, prev, event);
    out.push_back(JournalEntry{.seq = row.seq,
                               .type = std::string(row.type),
                               .recorded_at = event.recorded_at,
                               .session_id = std::string(session_id),
                               .task_id = std::string(task_id),
                               .payload = events::payload_json(event.payload)});
    return true;
  });
  return out;
}

void Journal::session_events(std::string_view session_id, std::uint64_t up_to_seq,
                             const std::function<void(events::Event&&)>& sink) {
  ThrowingReporter reporter(path());
  ChainVerifier verifier(0, genesis_hash(), reporter, hasher_);
  engine_->scan_session(session_id, up_to_seq, [&](const EventRow& row, std::string_view prev) {
    events::Event event;
    verifier.check_linked(row, prev, event);
    sink(std::move(event));
    return true;
  });
}

void Journal::events_up_to(std::uint64_t up_to_seq,
                           const std::function<void(events::Event&&)>& sink) {
  if (up_to_seq == 0) return;
  ThrowingReporter reporter(path());
  ChainVerifier verifier(0, genesis_hash(), reporter, hasher_);
  events::Event event;
  engine_->scan(0, [&](const EventRow& row) {
    if (row.seq > up_to_seq) return false;
    verifier.check(row, event);
    sink(std::move(event));
    return row.seq < up_to_seq;
  });
  if (verifier.next_seq() <= up_to_seq) {
    throw Error(ErrorCode::Corrupt, path() + ": event " + std::to_string(verifier.next_seq()) +
                                        " is missing (the journal ends before event " +
                                        std::to_string(up_to_seq) + ")");
  }
}

std::string Journal::session_of(std::string_view task_id, std::uint64_t up_to_seq) {
  std::string session;
  engine_->scan_task(task_id, up_to_seq, [&](const EventRow& row, std::string_view) {
    session.assign(row.session_id);
    return false;
  });
  return session;
}

void Journal::read_checkpoint(const CheckpointInfo& info,
                              const std::function<void(std::string_view)>& sink) {
  const std::string where = path() + ": checkpoint of event " + std::to_string(info.seq) + ": ";
  std::int64_t n = 0;
  engine_->scan_checkpoint(info.seq, [&](std::int64_t stored_n, std::string_view data,
                                         std::string_view digest) {
    if (stored_n != n || n >= info.chunks) {
      throw Error(ErrorCode::Corrupt, where + "chunk " + std::to_string(n) + " missing or extra");
    }
    if (hasher_.digest(data) != digest) {
      throw Error(ErrorCode::Corrupt, where + "chunk " + std::to_string(n) + " damaged");
    }
    try {
      sink(data);
    } catch (const Error& e) {
      throw Error(e.code(), where + e.what());
    }
    ++n;
  });
  if (n != info.chunks) {
    throw Error(ErrorCode::Corrupt, where + "has " + std::to_string(n) + " of its " +
                                        std::to_string(info.chunks) + " chunks");
  }
}

void Journal::write_checkpoint(const CheckpointInfo& info, std::int64_t created_at,
                               const std::function<void(const ChunkSink&)>& produce, int keep) {
  engine_->write_checkpoint(
      info, created_at,
      [&](const Engine::ChunkWriter& write) {
        produce([&](std::string_view data) { write(data, hasher_.digest(data)); });
      },
      keep);
}

void Journal::begin_write() {
  engine_->begin_write();
  pending_seq_ = 0;
}

void Journal::begin_optimistic_write() {
  engine_->begin_optimistic_write(verified_seq_);
  pending_seq_ = 0;
}

void Journal::append(const events::Event& event) {
  // Never an event out of sequence: a gap would make every later open refuse the journal.
  const std::uint64_t next = (pending_seq_ != 0 ? pending_seq_ : verified_seq_) + 1;
  if (event.seq != next) {
    throw Error(ErrorCode::Storage, path() + ": append event " + std::to_string(event.seq) +
                                        ": out of sequence (the next event is " +
                                        std::to_string(next) + ")");
  }
  const std::string payload = events::encode(event.payload);
  const EventRow row{.seq = event.seq,
                     .type = events::type_name(event.payload),  // static storage
                     .version = events::kPayloadVersion,
                     .recorded_at = event.recorded_at.time_since_epoch().count(),
                     .session_id = event.session_id,
                     .task_id = event.task_id,
                     .payload = payload};
  const std::string& prev = pending_seq_ != 0 ? pending_hash_ : verified_hash_;
  EventRow hashed = row;
  hashed.hash = hasher_.hash(prev, row);  // the hasher's scratch, valid until its next use
  engine_->append(hashed);
  pending_seq_ = event.seq;
  pending_hash_.assign(hashed.hash);
}

void Journal::commit() {
  engine_->commit();
  if (pending_seq_ != 0) {
    verified_seq_ = pending_seq_;
    verified_hash_ = pending_hash_;  // a copy into its buffer: both keep theirs
    pending_seq_ = 0;
  }
}

void Journal::rollback() noexcept {
  pending_seq_ = 0;
  engine_->rollback();
}

}  // namespace taskjournal::store

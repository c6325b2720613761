#include "store/journal.hpp"

#include <utility>

#include "store/open.hpp"
#include "store/parallel_chain.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal::store {

Journal::Journal(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {
  load_anchor();
  verified_seq_ = base_seq();
  verified_hash_ = base_hash();
}

void Journal::load_anchor() { anchor_ = engine_->anchor(); }

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
  load_anchor();
  verified_seq_ = base_seq();
  verified_hash_ = base_hash();
  pending_seq_ = 0;
  must_read_ = true;
  fresh_ = true;
}

void Journal::resume_after(std::uint64_t seq, std::string hash) {
  verified_seq_ = seq;
  verified_hash_ = std::move(hash);
  pending_seq_ = 0;
  must_read_ = true;
  fresh_ = true;
}

void Journal::read_new(const std::function<void(events::Event&&)>& sink,
                       const std::function<bool(std::string_view)>& wants_payload) {
  try {
    ThrowingReporter reporter(path());
    ChainVerifier verifier(verified_seq_, verified_hash_, reporter, hasher_);
    bool first = true;
    ScanHooks hooks;
    hooks.before = [&](const EventRow& row) {
      if (std::exchange(first, false) && row.seq != verified_seq_ + 1) check_archived();
      return true;
    };
    hooks.wants_payload = wants_payload;
    // Only the first `before` uses the engine (check_archived); the sink does not.
    hooks.scan_thread = std::exchange(fresh_, false);
    // The verifier's reporter throws at the first problem: a row reaches the sink decoded.
    verified_scan(*engine_, verifier, hooks, [&](const EventRow& row, events::Event* event) {
      sink(std::move(*event));
      verified_seq_ = row.seq;
      verified_hash_.assign(row.hash);  // checked equal to the hash computed
      return true;
    });
    if (first) check_archived();  // nothing after us: perhaps because it was archived
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
    verifier.check_linked(row, linked(row, prev), event);
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
    verifier.check_linked(row, linked(row, prev), event);
    sink(std::move(event));
    return true;
  });
}

void Journal::events_up_to(std::uint64_t up_to_seq,
                           const std::function<void(events::Event&&)>& sink) {
  if (up_to_seq <= base_seq()) return;
  ThrowingReporter reporter(path());
  ChainVerifier verifier(base_seq(), base_hash(), reporter, hasher_);
  ScanHooks hooks;
  hooks.before = [&](const EventRow& row) { return row.seq <= up_to_seq; };
  hooks.scan_thread = true;  // neither `before` nor the sink uses the engine
  verified_scan(*engine_, verifier, hooks, [&](const EventRow& row, events::Event* event) {
    sink(std::move(*event));
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
  if (session.empty() && anchor_) session = engine_->anchor_session_of(task_id);
  return session;
}

void Journal::anchor_entries_of(std::string_view session_id,
                                const std::function<void(events::CheckpointEntry&&)>& sink) {
  if (!anchor_) return;
  const std::string where = path() + ": its events up to " + std::to_string(anchor_->seq) +
                            " were archived (to " + anchor_->archive +
                            "), and the checkpoint of that event, which holds the views up to "
                            "there, is unusable: ";
  std::optional<CheckpointInfo> info;
  for (auto& c : engine_->checkpoints()) {
    if (c.seq == anchor_->seq) info = c;
  }
  if (!info) throw Error(ErrorCode::Corrupt, where + "missing (the anchor's checkpoint)");
  const auto format = static_cast<std::uint32_t>(info->format);
  auto take = [&](std::string_view data) {
    for (auto& entry : events::decode_checkpoint_chunk(data, format).entries) {
      if (entry.task.session_id == session_id) sink(std::move(entry));
    }
  };
  const auto chunks = engine_->anchor_chunks_of(session_id);
  if (!chunks) {
    read_checkpoint(*info, take);
    return;
  }
  for (const std::int64_t n : *chunks) {
    bool found = false;
    engine_->scan_checkpoint_chunk(
        anchor_->seq, n, [&](std::string_view data, std::string_view digest) {
          found = true;
          if (hasher_.digest(data) != digest) {
            throw Error(ErrorCode::Corrupt, where + "chunk " + std::to_string(n) + " damaged");
          }
          take(data);
        });
    if (!found) throw Error(ErrorCode::Corrupt, where + "chunk " + std::to_string(n) + " missing");
  }
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

std::string_view Journal::linked(const EventRow& row, std::string_view prev) const {
  // The first event after an archived prefix chains to the anchor, whose row is gone.
  if (prev.empty() && anchor_ && row.seq == anchor_->seq + 1) return anchor_->hash;
  return prev;
}

void Journal::check_archived() {
  auto now = engine_->anchor();
  if (now == anchor_) return;
  const bool past_us = now && now->seq > verified_seq_;
  anchor_ = std::move(now);
  if (past_us) throw PrefixArchived{};
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

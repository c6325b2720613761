// copy_journal and archive_journal (taskjournal/copy.hpp): stored rows moved from one engine to
// another as they are.
//
// The registry cannot do this: it decides and encodes new events (and Journal::append writes the
// current payload version). Here each source row is checked by the one chain verifier and handed
// to the destination engine unchanged, so both journals carry the same bytes and hashes.
#include "taskjournal/copy.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "events/event.hpp"
#include "store/chain.hpp"
#include "store/checkpoint_io.hpp"
#include "store/engine.hpp"
#include "store/journal.hpp"
#include "store/open.hpp"
#include "store/parallel_chain.hpp"
#include "store/sqlite/file_checks.hpp"
#include "taskjournal/error.hpp"

namespace taskjournal {
namespace {

constexpr std::uint64_t kProgressEvery = 4096;

store::EngineConfig config_for(const std::string& location, bool read_only,
                               std::chrono::milliseconds busy_timeout) {
  return store::EngineConfig{.kind = store::is_postgresql_uri(location)
                                         ? store::EngineKind::Postgresql
                                         : store::EngineKind::Sqlite,
                             .location = location,
                             .read_only = read_only,
                             .durability = Durability::Full,
                             .busy_timeout = busy_timeout};
}

// As JournalReader::open: a missing or empty file is not a journal to copy, and is not created.
std::unique_ptr<store::Engine> open_source(const std::string& location,
                                           std::chrono::milliseconds busy_timeout) {
  const auto config = config_for(location, /*read_only=*/true, busy_timeout);
  if (config.kind == store::EngineKind::Sqlite) {
    std::error_code ec;
    const auto status = std::filesystem::status(location, ec);
    if (status.type() == std::filesystem::file_type::not_found) {
      throw Error(ErrorCode::ReadOnly, location + ": no such journal");
    }
    if (ec) throw Error(ErrorCode::Storage, location + ": " + ec.message());
    if (status.type() != std::filesystem::file_type::regular) {
      throw Error(ErrorCode::Storage, location + ": not a regular file");
    }
    if (std::filesystem::file_size(location, ec) == 0 && !ec) {
      throw Error(ErrorCode::Corrupt, location + ": not a taskjournal journal (empty file)");
    }
  }
  return store::open_engine(config);
}

// As Registry::open: the same checks of the file, created when missing.
std::unique_ptr<store::Engine> open_destination(const std::string& location,
                                                std::chrono::milliseconds busy_timeout) {
  const auto config = config_for(location, /*read_only=*/false, busy_timeout);
  if (config.kind == store::EngineKind::Sqlite) store::prepare_journal_file(location, false);
  return store::open_engine(config);
}

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 0xF];
  }
  return out;
}

// The rows of `src` after what `dst` holds, up to `up_to` (0: the newest when the copy began),
// appended to `dst` as stored. The source may be archived (an anchor): its rows then chain from
// the anchor, and `dst` must hold at least the archived prefix.
CopyResult copy_rows(store::Engine& src, store::Engine& dst, std::uint64_t up_to,
                     const CopyOptions& options) {
  CopyResult result{.source = src.name(), .destination = dst.name()};
  const std::string& to = result.destination;
  const std::optional<store::Anchor> anchor = src.anchor();
  const std::uint64_t base = anchor ? anchor->seq : 0;
  const std::string base_hash = anchor ? anchor->hash : store::genesis_hash();

  std::uint64_t total = src.newest_seq();  // what the copy copies: later events wait
  if (up_to != 0) total = std::min(total, up_to);
  total = std::max(total, base);
  const std::uint64_t kept = dst.newest_seq();
  const std::string kept_hash = kept == 0 ? store::genesis_hash() : dst.stored_hash(kept);
  const auto not_a_prefix = [&](const std::string& why) {
    return Error(ErrorCode::InvalidArgument,
                 to + ": holds " + std::to_string(kept) + " events that are not a prefix of " +
                     result.source + " (" + why +
                     "): copy into a new file or an empty schema, or remove it first");
  };
  if (kept > total) {
    throw not_a_prefix("the source has only " + std::to_string(total) + " events");
  }
  if (kept < base) {
    throw Error(ErrorCode::InvalidArgument,
                to + ": holds " + std::to_string(kept) + " events, but " + result.source +
                    " begins after event " + std::to_string(base) +
                    " (the events up to it were "
                    "archived to " +
                    anchor->archive + "): copy that archive into it first");
  }
  if (kept == base && kept_hash != base_hash) {
    throw not_a_prefix("event " + std::to_string(kept) + " differs");
  }
  result.kept = kept;
  result.digest = JournalDigest{.seq = base, .hash = hex(base_hash)};
  if (total == base) {
    if (options.progress) options.progress(total, total);
    return result;
  }

  store::ThrowingReporter reporter(result.source);
  store::ChainHasher hasher;
  store::ChainVerifier verifier(base, base_hash, reporter, hasher);
  struct Write {  // the open destination transaction, rolled back unless committed
    store::Engine& engine;
    bool open = false;
    ~Write() {
      if (open) engine.rollback();
    }
  } write{dst};
  std::uint64_t in_batch = 0;
  std::string last_hash;
  const int version = src.schema_version();

  // Checked as the registry checks a fold (hashes and payloads of a large copy on worker
  // threads, the rows read on a scan thread where the machine has the cores): the reporter throws
  // at the first problem, so every row reaching the sink checked out. The sink never uses `src`.
  store::ScanHooks hooks;
  hooks.scan_thread = true;
  store::verified_scan(src, verifier, hooks, [&](const store::EventRow& row, events::Event*) {
    if (row.seq <= kept) {
      if (row.seq == kept && row.hash != kept_hash) {
        throw not_a_prefix("event " + std::to_string(kept) + " differs");
      }
    } else {
      if (!write.open) {
        dst.begin_write();
        write.open = true;
        // Under the write lock: nobody appended since the last batch (or since we looked).
        if (const auto newest = dst.newest_seq(); newest != row.seq - 1) {
          throw Error(ErrorCode::Storage,
                      to + ": changed during the copy (newest event " + std::to_string(newest) +
                          ", the copy was at " + std::to_string(row.seq - 1) +
                          "): another program writes to it; stop it and run the copy again");
        }
        // The rows may be of a newer schema version than the destination declares (task_pruned).
        if (dst.schema_version() < version) dst.raise_schema_version(version);
      }
      dst.append(row);
      ++result.copied;
      if (++in_batch == options.batch_events) {
        dst.commit();
        write.open = false;
        in_batch = 0;
        ++result.transactions;
      }
    }
    if (options.progress && (row.seq % kProgressEvery == 0 || row.seq == total)) {
      options.progress(row.seq, total);
    }
    if (row.seq == total) last_hash.assign(row.hash);
    return row.seq < total;
  });
  if (verifier.next_seq() != total + 1) {
    throw Error(ErrorCode::Corrupt, result.source + ": event " +
                                        std::to_string(verifier.next_seq()) +
                                        ": missing (the journal ends before its newest event " +
                                        std::to_string(total) + ")");
  }
  if (write.open) {
    dst.commit();
    write.open = false;
    ++result.transactions;
  }
  result.digest = JournalDigest{.seq = total, .hash = hex(last_hash)};
  return result;
}

}  // namespace

CopyResult copy_journal(const std::string& source, const std::string& destination,
                        const CopyOptions& options) {
  if (options.batch_events == 0) {
    throw Error(ErrorCode::InvalidArgument,
                "invalid argument: batch_events is 0; copy at least one event per transaction");
  }
  // The source first: a source that cannot be read must not leave a new, empty destination.
  const auto src = open_source(source, options.busy_timeout);
  const auto dst = open_destination(destination, options.busy_timeout);
  return copy_rows(*src, *dst, options.up_to_seq, options);
}

ArchiveResult archive_journal(const std::string& journal, const std::string& archive,
                              const ArchiveOptions& options) {
  if (options.before_seq == 0) {
    throw Error(ErrorCode::InvalidArgument,
                "invalid argument: before_seq is 0; give the last event to archive (at most)");
  }
  if (options.batch_events == 0) {
    throw Error(ErrorCode::InvalidArgument,
                "invalid argument: batch_events is 0; copy at least one event per transaction");
  }
  static_cast<void>(open_source(journal, options.busy_timeout));  // its checks: no new one
  const bool pg = store::is_postgresql_uri(journal);
  if (!pg) store::prepare_journal_file(journal, false);
  store::Journal live(
      store::JournalConfig{.kind = pg ? store::EngineKind::Postgresql : store::EngineKind::Sqlite,
                           .path = journal,
                           .busy_timeout = options.busy_timeout});
  ArchiveResult result{.journal = live.path(), .bytes_before = live.engine().stored_bytes()};
  const std::optional<store::Anchor> before = live.anchor();
  const std::uint64_t base = live.base_seq();
  const std::uint64_t s = std::min(options.before_seq, live.newest_seq());
  result.archived_through = std::max(base, s);

  if (s > base) {
    // 1. The views at s, from the anchor's checkpoint (or the first event), every event checked.
    projections::Views views;
    if (before) {
      const auto info = store::checkpoint_at(live, base);
      if (!info) {
        throw Error(ErrorCode::Corrupt, live.path() + ": the checkpoint of its anchor (event " +
                                            std::to_string(base) + ") is missing");
      }
      views = store::read_views_checkpoint(live, *info);
    }
    live.events_up_to(s, [&](events::Event&& event) { views.apply(event); });
    const std::string hash = live.stored_hash(s);
    // 2. The anchor's checkpoint, read back and compared before anything depends on it.
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    std::vector<store::AnchorTask> index;
    store::write_views_checkpoint(
        live, views, hash, std::chrono::duration_cast<std::chrono::microseconds>(now).count(),
        /*keep=*/1 << 30, &index);
    const auto info = store::checkpoint_at(live, s);
    // The index of the anchor's tasks comes from the checkpoint as stored: a rerun finds the
    // checkpoint an interrupted run wrote, and writes nothing.
    if (!info || info->hash != hash ||
        !(store::read_views_checkpoint(live, *info, &index) == views)) {
      throw Error(ErrorCode::Storage, live.path() + ": the checkpoint of event " +
                                          std::to_string(s) + " did not read back as written");
    }
    // 3. The prefix into the archive (resumes after what an interrupted run copied).
    const auto dst = open_destination(archive, options.busy_timeout);
    CopyOptions copy{.batch_events = options.batch_events,
                     .busy_timeout = options.busy_timeout,
                     .progress = options.progress,
                     .up_to_seq = s};
    const CopyResult copied = copy_rows(live.engine(), *dst, s, copy);
    result.archive = copied.destination;
    result.events_archived = copied.copied;
    if (dst->newest_seq() < s || dst->stored_hash(s) != hash) {
      throw Error(ErrorCode::Storage, copied.destination + ": does not end with event " +
                                          std::to_string(s) + " of " + live.path());
    }
    // 4. The anchor and the deletion, in one transaction of the live journal.
    live.begin_write();
    try {
      if (live.engine().anchor() != before) {
        throw Error(ErrorCode::Storage, live.path() +
                                            ": archived by another program meanwhile; run the "
                                            "archive again");
      }
      live.raise_schema_version(store::kPrunedSchemaVersion);
      live.engine().archive_prefix(
          store::Anchor{.seq = s, .hash = hash, .archive = copied.destination}, index);
      live.commit();
    } catch (...) {
      live.rollback();
      throw;
    }
  } else {
    result.archive = before ? before->archive : archive;
  }
  // 5. The space back (also after an earlier run that stopped before this step).
  if (options.compact) live.engine().compact();
  result.bytes_after = live.engine().stored_bytes();
  return result;
}

}  // namespace taskjournal

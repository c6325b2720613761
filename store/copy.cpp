// copy_journal (taskjournal/copy.hpp): stored rows moved from one engine to another as they are.
//
// The registry cannot do this: it decides and encodes new events (and Journal::append writes the
// current payload version). Here each source row is checked by the one chain verifier and handed
// to the destination engine unchanged, so both journals carry the same bytes and hashes.
#include "taskjournal/copy.hpp"

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "events/event.hpp"
#include "store/chain.hpp"
#include "store/engine.hpp"
#include "store/open.hpp"
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
  CopyResult result{.source = src->name(), .destination = dst->name()};
  const std::string& to = result.destination;

  const std::uint64_t total = src->newest_seq();  // what the copy copies: later events wait
  const std::uint64_t kept = dst->newest_seq();
  const std::string kept_hash = kept == 0 ? store::genesis_hash() : dst->stored_hash(kept);
  const auto not_a_prefix = [&](const std::string& why) {
    return Error(ErrorCode::InvalidArgument,
                 to + ": holds " + std::to_string(kept) + " events that are not a prefix of " +
                     result.source + " (" + why +
                     "): copy into a new file or an empty schema, or remove it first");
  };
  if (kept > total) {
    throw not_a_prefix("the source has only " + std::to_string(total) + " events");
  }
  result.kept = kept;
  result.digest = JournalDigest{.seq = 0, .hash = hex(store::genesis_hash())};
  if (total == 0) {
    if (options.progress) options.progress(0, 0);
    return result;
  }

  store::ThrowingReporter reporter(result.source);
  store::ChainHasher hasher;
  store::ChainVerifier verifier(0, store::genesis_hash(), reporter, hasher);
  events::Event event;
  struct Write {  // the open destination transaction, rolled back unless committed
    store::Engine& engine;
    bool open = false;
    ~Write() {
      if (open) engine.rollback();
    }
  } write{*dst};
  std::uint64_t in_batch = 0;
  std::string last_hash;

  src->scan(0, [&](const store::EventRow& row) {
    verifier.check(row, event);  // throws at the first problem
    if (row.seq <= kept) {
      if (row.seq == kept && row.hash != kept_hash) {
        throw not_a_prefix("event " + std::to_string(kept) + " differs");
      }
    } else {
      if (!write.open) {
        dst->begin_write();
        write.open = true;
        // Under the write lock: nobody appended since the last batch (or since we looked).
        if (const auto newest = dst->newest_seq(); newest != row.seq - 1) {
          throw Error(ErrorCode::Storage,
                      to + ": changed during the copy (newest event " + std::to_string(newest) +
                          ", the copy was at " + std::to_string(row.seq - 1) +
                          "): another program writes to it; stop it and run the copy again");
        }
      }
      dst->append(row);
      ++result.copied;
      if (++in_batch == options.batch_events) {
        dst->commit();
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
    dst->commit();
    write.open = false;
    ++result.transactions;
  }
  result.digest = JournalDigest{.seq = total, .hash = hex(last_hash)};
  return result;
}

}  // namespace taskjournal

#include "store/chain.hpp"

#include <array>
#include <chrono>
#include <type_traits>

#include <openssl/evp.h>

namespace taskjournal::store {
namespace {

std::string event_prefix(std::uint64_t seq) { return "event " + std::to_string(seq) + ": "; }

}  // namespace

std::string genesis_hash() { return std::string(kHashSize, '\0'); }

// ---- hashing ------------------------------------------------------------------------------------

struct ChainHasher::Impl {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  // The message is gathered in one buffer and digested with a single update: per-field updates
  // cost more than the hashing itself for events of a few hundred bytes. A buffer grown by one
  // large event is not kept.
  std::string message;
  std::string digest = std::string(kHashSize, '\0');
  static constexpr std::size_t kKeptCapacity = 64 * 1024;

  Impl() {
    if (!ctx || !md) {
      EVP_MD_free(md);
      EVP_MD_CTX_free(ctx);
      throw Error(ErrorCode::Storage, "OpenSSL: SHA-256 is not available");
    }
  }
  ~Impl() {
    EVP_MD_free(md);
    EVP_MD_CTX_free(ctx);
  }

  static void check(int ok) {
    if (ok != 1) throw Error(ErrorCode::Storage, "OpenSSL: SHA-256 failed");
  }
  void begin() {
    if (message.capacity() > kKeptCapacity) {
      message = std::string();
    } else {
      message.clear();
    }
  }
  void add(std::string_view s) { message.append(s.data(), s.size()); }
  template <class Int>
  void add_le(Int value) {
    std::array<char, sizeof(Int)> bytes;
    auto v = static_cast<std::make_unsigned_t<Int>>(value);
    for (auto& b : bytes) {
      b = static_cast<char>(v & 0xff);
      v = static_cast<decltype(v)>(v >> 8);
    }
    message.append(bytes.data(), bytes.size());
  }
  void add_sized(std::string_view s) {
    add_le(static_cast<std::uint32_t>(s.size()));
    add(s);
  }
  const std::string& digest_of(std::string_view data) {
    unsigned int size = 0;
    check(EVP_DigestInit_ex(ctx, md, nullptr));
    check(EVP_DigestUpdate(ctx, data.data(), data.size()));
    check(EVP_DigestFinal_ex(ctx, reinterpret_cast<unsigned char*>(digest.data()), &size));
    return digest;
  }
};

ChainHasher::ChainHasher() : impl_(std::make_unique<Impl>()) {}
ChainHasher::~ChainHasher() = default;

const std::string& ChainHasher::hash(std::string_view prev, std::uint64_t seq,
                                     std::string_view type, std::uint32_t version,
                                     std::int64_t recorded_at, std::string_view session_id,
                                     std::string_view task_id, std::string_view payload) {
  Impl& h = *impl_;
  h.begin();
  h.add(prev);
  h.add_le(seq);
  h.add_sized(type);
  h.add_le(version);
  h.add_le(recorded_at);
  h.add_sized(session_id);
  h.add_sized(task_id);
  h.add_sized(payload);
  return h.digest_of(h.message);
}

const std::string& ChainHasher::hash(std::string_view prev, const EventRow& row) {
  return hash(prev, row.seq, row.type, static_cast<std::uint32_t>(row.version), row.recorded_at,
              row.session_id, row.task_id, row.payload);
}

const std::string& ChainHasher::digest(std::string_view data) { return impl_->digest_of(data); }

// ---- verifying ----------------------------------------------------------------------------------

void ThrowingReporter::problem(std::uint64_t, ErrorCode code, const std::string& what) {
  throw Error(code, prefix_ + ": " + what);
}

ChainVerifier::ChainVerifier(std::uint64_t after_seq, std::string prev_hash,
                             ChainReporter& reporter, ChainHasher& hasher)
    : reporter_(reporter), hasher_(hasher), next_(after_seq + 1), prev_(std::move(prev_hash)) {}

void ChainVerifier::report(std::uint64_t seq, ErrorCode code, const std::string& what) {
  reporter_.problem(seq, code, event_prefix(seq) + what);
}

bool ChainVerifier::check(const EventRow& row, events::Event& event, bool payload) {
  bool linked = true;
  if (row.seq != next_) {
    const std::uint64_t expected = next_;
    // The next row must carry the number after this one, whatever the reporter does with it.
    next_ = row.seq + 1;
    prev_.assign(row.hash);
    if (row.seq > expected) {
      const std::uint64_t last_missing = row.seq - 1;
      report(expected, ErrorCode::Corrupt,
             last_missing == expected ? "missing (sequence gap: event " + std::to_string(row.seq) +
                                            " follows event " + std::to_string(expected - 1) + ")"
                                      : "missing, up to event " + std::to_string(last_missing) +
                                            " (sequence gap: event " + std::to_string(row.seq) +
                                            " follows event " + std::to_string(expected - 1) + ")");
    } else {
      report(row.seq, ErrorCode::Corrupt,
             "out of sequence (expected event " + std::to_string(expected) + ")");
    }
    linked = false;  // the predecessor's hash is unknown
  }
  if (linked) {
    const bool version_fits = row.version >= 0 && row.version <= UINT32_MAX;
    const bool chained = version_fits && hasher_.hash(prev_, row) == row.hash;
    next_ = row.seq + 1;
    prev_.assign(row.hash);  // equal to the computed hash when chained
    if (!chained) {
      report(row.seq, ErrorCode::Corrupt, "hash mismatch (row altered, removed or reordered)");
    }
  }
  return decode(row, event, payload);
}

bool ChainVerifier::check_linked(const EventRow& row, std::string_view prev, events::Event& event) {
  if (prev.size() != kHashSize) {
    report(row.seq, ErrorCode::Corrupt,
           "previous event " + std::to_string(row.seq - 1) + " missing (sequence gap)");
  } else if (row.version < 0 || row.version > UINT32_MAX || hasher_.hash(prev, row) != row.hash) {
    report(row.seq, ErrorCode::Corrupt, "hash mismatch (row altered, removed or reordered)");
  }
  return decode(row, event);
}

bool ChainVerifier::decode(const EventRow& row, events::Event& event, bool payload) {
  if (row.version < 1 || row.version > events::kPayloadVersion) {
    report(row.seq, ErrorCode::Unsupported,
           "unknown payload version " + std::to_string(row.version) + " (this build reads 1 to " +
               std::to_string(events::kPayloadVersion) + ")");
    return false;
  }
  if (!events::is_known_type(row.type)) {
    report(row.seq, ErrorCode::Corrupt, "unknown event type \"" + std::string(row.type) + "\"");
    return false;
  }
  event.seq = row.seq;
  event.recorded_at = Timestamp{std::chrono::microseconds{row.recorded_at}};
  event.session_id.assign(row.session_id);
  event.task_id.assign(row.task_id);
  if (!payload) return true;
  try {
    event.payload = events::decode(row.type, static_cast<std::uint32_t>(row.version), row.payload,
                                   row.session_id, row.task_id, event.recorded_at);
  } catch (const Error& e) {
    report(row.seq, e.code(), e.what());
    return false;
  }
  return true;
}

}  // namespace taskjournal::store

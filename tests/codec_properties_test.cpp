// Properties of the payload codec (issue 3, item 5): every event type round-trips, and damaged
// bytes (one byte flipped, truncated, extended, or random) either decode to a valid event or are
// reported as Error(Corrupt): never another error, a crash, a hang or undefined behaviour.
//
// ctest runs this file twice: as codec_properties_test, and as codec_properties_sanitized, built
// with the codec sources under AddressSanitizer and UndefinedBehaviorSanitizer.
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "events/event.hpp"
#include "events/validate.hpp"
#include "support/event_generators.hpp"
#include "support/generators.hpp"
#include "taskjournal/error.hpp"

namespace tj = taskjournal;
namespace tjt = taskjournal::testing;
namespace ev = taskjournal::events;

namespace {

ev::Payload decode_as(const ev::Event& e, std::string_view bytes) {
  return ev::decode(ev::type_name(e.payload), ev::kPayloadVersion, bytes, e.session_id, e.task_id,
                    e.recorded_at);
}

// Every string of a decoded payload is UTF-8, every Json is JSON, every enum is in range.
struct Validity {
  bool ok = true;
  void text(const std::string& s) { ok = ok && ev::is_valid_utf8(s); }
  void text(const std::optional<std::string>& s) {
    if (s) text(*s);
  }
  void json(const std::string& s) { ok = ok && ev::is_valid_json(s); }
  template <class E>
  void in_range(E v, E max) {
    ok = ok && static_cast<unsigned>(v) <= static_cast<unsigned>(max);
  }
  void links(const tj::TaskLinks& l) {
    text(l.child_session_id);
    text(l.remote_task_id);
    for (const auto& id : l.resource_ids) text(id);
  }
  void artifact(const tj::TaskArtifact& a) {
    text(a.name);
    text(a.type);
    text(a.path);
    text(a.url);
  }
  void operator()(const ev::TaskCreated& p) {
    text(p.input.kind);
    text(p.input.display_name);
    json(p.input.spec);
    in_range(p.input.state, tj::SessionTaskState::Canceled);
    links(p.input.links);
    in_range(p.input.wake_policy, tj::TaskWakePolicy::OnActivity);
  }
  void operator()(const ev::TaskUpdated& p) {
    const auto& u = p.update;
    if (u.state) in_range(*u.state, tj::SessionTaskState::Canceled);
    text(u.state_detail);
    if (u.progress) {
      text(u.progress->unit);
      text(u.progress->label);
    }
    if (u.input_request) {
      text(u.input_request->id);
      text(u.input_request->prompt);
      if (u.input_request->expected) json(*u.input_request->expected);
    }
    text(u.summary);
    text(u.result_path);
    if (u.artifacts) {
      for (const auto& a : *u.artifacts) artifact(a);
    }
    if (u.append_artifact) artifact(*u.append_artifact);
    if (u.error) {
      text(u.error->kind);
      text(u.error->message);
    }
    if (u.links) links(*u.links);
    text(u.worker_id);
  }
  void operator()(const ev::CancelRequested&) {}
  void operator()(const ev::TaskPruned&) {}
  void operator()(const ev::MessageRecorded& p) {
    text(p.message.id);
    in_range(p.message.direction, tj::TaskMessageDirection::Outbound);
    for (const auto& part : p.message.content) {
      if (const auto* t = std::get_if<tj::TextPart>(&part)) {
        text(t->text);
      } else {
        json(std::get<tj::DataPart>(part).data);
      }
    }
    text(p.message.in_reply_to);
  }
};

/// Why `payload`, decoded from damaged bytes as the type of `e`, is not a valid event ("" if it
/// is): it must be of the type asked for, hold only UTF-8 strings, JSON and in-range enums, and
/// encode to bytes that decode to itself.
std::string invalid_reason(const ev::Event& e, const ev::Payload& payload) {
  if (payload.index() != e.payload.index()) return "another event type";
  Validity validity;
  std::visit(validity, payload);
  if (!validity.ok)
    return "a string that is not UTF-8, a Json that is not JSON or an enum out of range";
  try {
    if (decode_as(e, ev::encode(payload)) != payload)
      return "its encoding decodes to another event";
  } catch (const tj::Error& err) {
    return std::string("its encoding does not decode: ") + err.what();
  }
  return {};
}

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += kHex[b >> 4];
    out += kHex[b & 0xF];
  }
  return out;
}

/// Decodes damaged `bytes` as the type of `e`. "" if they decoded to a valid event or threw
/// Error(Corrupt); otherwise what went wrong, for the counterexample. `decoded` counts successes.
std::string damage_problem(const ev::Event& e, std::string_view bytes, int& decoded) {
  std::string problem;
  try {
    const ev::Payload p = decode_as(e, bytes);
    ++decoded;
    if (auto why = invalid_reason(e, p); !why.empty()) {
      problem = "decoded to an invalid event (" + why + "): " + rc::toString(p);
    }
  } catch (const tj::Error& err) {
    if (err.code() != tj::ErrorCode::Corrupt) {
      problem =
          "Error(" + std::string(tj::to_string(err.code())) + ") instead of Corrupt: " + err.what();
    }
  } catch (const std::exception& other) {
    problem = std::string("a foreign exception: ") + other.what();
  }
  if (!problem.empty()) problem += "\n  bytes: " + hex(bytes);
  return problem;
}

}  // namespace

RC_GTEST_PROP(CodecProps, TaskCreatedRoundTrips, ()) {
  const ev::Event e = *tjt::event_of(0);
  RC_ASSERT(decode_as(e, ev::encode(e.payload)) == e.payload);
}

RC_GTEST_PROP(CodecProps, TaskUpdatedRoundTrips, ()) {
  const ev::Event e = *tjt::event_of(1);
  RC_ASSERT(decode_as(e, ev::encode(e.payload)) == e.payload);
}

RC_GTEST_PROP(CodecProps, CancelRequestedRoundTrips, ()) {
  const ev::Event e = *tjt::event_of(2);
  RC_ASSERT(decode_as(e, ev::encode(e.payload)) == e.payload);
}

RC_GTEST_PROP(CodecProps, TaskPrunedRoundTripsAsNoBytes, ()) {
  const ev::Event e = *tjt::event_of(4);
  RC_ASSERT(ev::encode(e.payload).empty());
  RC_ASSERT(decode_as(e, ev::encode(e.payload)) == e.payload);
}

RC_GTEST_PROP(CodecProps, MessageRecordedRoundTrips, ()) {
  const ev::Event e = *tjt::event_of(3);
  RC_ASSERT(decode_as(e, ev::encode(e.payload)) == e.payload);
}

// Every byte of the encoding, in turn, with each of its bits flipped and with all of them.
RC_GTEST_PROP(CodecProps, FlippedByteDecodesOrIsCorrupt, ()) {
  const ev::Event e = *tjt::event_with_bytes();
  const std::string bytes = ev::encode(e.payload);
  int decoded = 0;
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    for (const int mask : {1, 2, 4, 8, 16, 32, 64, 128, 255}) {
      std::string damaged = bytes;
      damaged[at] = static_cast<char>(static_cast<unsigned char>(damaged[at]) ^ mask);
      if (auto problem = damage_problem(e, damaged, decoded); !problem.empty()) {
        RC_FAIL("byte " + std::to_string(at) + " xor " + std::to_string(mask) + ": " + problem);
      }
    }
  }
  RC_CLASSIFY(decoded > 0, "some damaged copies still decode");
}

// Every byte of the encoding, in turn, overwritten with each of the small values the grammar uses
// for tags, enums and counts (and just beyond them), and with 0x7f, 0x80, 0xff.
RC_GTEST_PROP(CodecProps, OverwrittenByteDecodesOrIsCorrupt, ()) {
  const ev::Event e = *tjt::event_with_bytes();
  const std::string bytes = ev::encode(e.payload);
  int decoded = 0;
  for (std::size_t at = 0; at < bytes.size(); ++at) {
    for (const int value : {0, 1, 2, 3, 4, 5, 6, 7, 8, 0x7f, 0x80, 0xff}) {
      std::string damaged = bytes;
      damaged[at] = static_cast<char>(value);
      if (auto problem = damage_problem(e, damaged, decoded); !problem.empty()) {
        RC_FAIL("byte " + std::to_string(at) + " := " + std::to_string(value) + ": " + problem);
      }
    }
  }
  RC_CLASSIFY(decoded > 0, "some damaged copies still decode");
}

// The encoding is self-delimiting, so no proper prefix of it decodes: every one is Corrupt.
RC_GTEST_PROP(CodecProps, TruncatedPayloadIsCorrupt, ()) {
  const ev::Event e = *tjt::event_with_bytes();
  const std::string bytes = ev::encode(e.payload);
  for (std::size_t keep = 0; keep < bytes.size(); ++keep) {
    int decoded = 0;
    const auto prefix = std::string_view(bytes).substr(0, keep);
    auto problem = damage_problem(e, prefix, decoded);
    if (problem.empty() && decoded > 0) problem = "decoded\n  bytes: " + hex(prefix);
    if (!problem.empty()) {
      RC_FAIL("first " + std::to_string(keep) + " of " + std::to_string(bytes.size()) +
              " bytes: " + problem);
    }
  }
}

RC_GTEST_PROP(CodecProps, TrailingBytesAreCorrupt, ()) {
  const ev::Event e = *tjt::event_of(*rc::gen::element(0, 1, 2, 3));
  const std::string extra = *rc::gen::nonEmpty(
      rc::gen::container<std::string>(rc::gen::resize(8, rc::gen::arbitrary<char>())));
  const std::string bytes = ev::encode(e.payload) + extra;
  int decoded = 0;
  auto problem = damage_problem(e, bytes, decoded);
  if (problem.empty() && decoded > 0) problem = "decoded\n  bytes: " + hex(bytes);
  if (!problem.empty()) RC_FAIL(problem);
}

// Random bytes for each type, built from the grammar's tokens (tags 0 and 1, small u64 counts and
// lengths, printable bytes, any byte); after the byte-order marker most of the time.
RC_GTEST_PROP(CodecProps, RandomBytesDecodeOrAreCorrupt, ()) {
  const ev::Event e = *tjt::event_of(*rc::gen::element(0, 1, 2, 3));
  const auto token = rc::gen::weightedOneOf<std::string>(
      {{5, rc::gen::just(std::string(1, '\x00'))},
       {4, rc::gen::just(std::string(1, '\x01'))},
       {3, rc::gen::map(tjt::uniform<int>(0, 5),
                        [](int n) {
                          std::string u64(8, '\x00');
                          u64[0] = static_cast<char>(n);
                          return u64;
                        })},
       {1, rc::gen::map(tjt::uniform<int>(2, 8),
                        [](int b) { return std::string(1, static_cast<char>(b)); })},
       {1, rc::gen::map(tjt::uniform<int>(32, 127),
                        [](int b) { return std::string(1, static_cast<char>(b)); })},
       {1, rc::gen::map(rc::gen::arbitrary<char>(), [](char b) { return std::string(1, b); })}});
  std::string bytes;
  for (const auto& t : *rc::gen::container<std::vector<std::string>>(token)) bytes += t;
  if (*rc::gen::weightedElement<bool>({{1, false}, {3, true}})) bytes.insert(0, 1, '\x01');
  int decoded = 0;
  if (auto problem = damage_problem(e, bytes, decoded); !problem.empty()) RC_FAIL(problem);
}

// A payload version this build does not know is Unsupported, never decoded as something else.
RC_GTEST_PROP(CodecProps, UnknownVersionIsUnsupported, ()) {
  const ev::Event e = *tjt::event_of(*rc::gen::element(0, 1, 2, 3));
  const auto version = *rc::gen::weightedOneOf<std::uint32_t>(
      {{2, rc::gen::element<std::uint32_t>(0, ev::kPayloadVersion + 1, ev::kPayloadVersion + 2,
                                           UINT32_MAX)},
       {1, tjt::uniform<std::uint32_t>(ev::kPayloadVersion + 1, UINT32_MAX)}});
  try {
    ev::decode(ev::type_name(e.payload), version, ev::encode(e.payload), e.session_id, e.task_id,
               e.recorded_at);
    RC_FAIL("decoded a payload of version " + std::to_string(version));
  } catch (const tj::Error& err) {
    RC_ASSERT(err.code() == tj::ErrorCode::Unsupported);
  }
}

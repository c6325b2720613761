// The snapshot design's JSON decoding (the reference's serde_json::from_str on every read),
// shared by its SQLite (snapshot.cpp) and PostgreSQL (pg_snapshot.cpp) re-creations.
#include "snapshot_json.hpp"

#include <stdexcept>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace bench {
namespace tj = taskjournal;
namespace {

using Value = rapidjson::Value;

std::string text(const Value& v) { return {v.GetString(), v.GetStringLength()}; }

std::optional<std::string> opt_text(const Value& o, const char* key) {
  auto it = o.FindMember(key);
  if (it == o.MemberEnd()) return std::nullopt;
  return text(it->value);
}

std::string raw_json(const Value& v) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  v.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

tj::Timestamp time_of(const Value& v) {
  auto t = tj::parse_timestamp(std::string_view(v.GetString(), v.GetStringLength()));
  if (!t) throw std::runtime_error("bad timestamp in snapshot");
  return *t;
}

std::optional<tj::Timestamp> opt_time(const Value& o, const char* key) {
  auto it = o.FindMember(key);
  if (it == o.MemberEnd()) return std::nullopt;
  return time_of(it->value);
}

}  // namespace

tj::SessionTask task_from_json(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) throw std::runtime_error("bad snapshot JSON");
  tj::SessionTask t;
  t.id = text(d["id"]);
  t.session_id = text(d["session_id"]);
  t.kind = text(d["kind"]);
  t.display_name = text(d["display_name"]);
  t.spec = raw_json(d["spec"]);
  t.state = *tj::parse_session_task_state(text(d["state"]));
  t.state_detail = opt_text(d, "state_detail");
  if (auto it = d.FindMember("progress"); it != d.MemberEnd()) {
    tj::TaskProgress p;
    const Value& v = it->value;
    if (v.HasMember("current")) p.current = v["current"].GetUint64();
    if (v.HasMember("total")) p.total = v["total"].GetUint64();
    p.unit = opt_text(v, "unit");
    p.label = opt_text(v, "label");
    t.progress = p;
  }
  if (auto it = d.FindMember("input_request"); it != d.MemberEnd()) {
    const Value& v = it->value;
    t.input_request = tj::TaskInputRequest{.id = text(v["id"]), .prompt = text(v["prompt"])};
    if (v.HasMember("expected")) t.input_request->expected = raw_json(v["expected"]);
  }
  t.cancel_requested_at = opt_time(d, "cancel_requested_at");
  t.summary = opt_text(d, "summary");
  t.result_path = opt_text(d, "result_path");
  if (auto it = d.FindMember("artifacts"); it != d.MemberEnd()) {
    for (const auto& a : it->value.GetArray()) {
      t.artifacts.push_back({.name = text(a["name"]),
                             .type = text(a["type"]),
                             .path = opt_text(a, "path"),
                             .url = opt_text(a, "url")});
    }
  }
  if (auto it = d.FindMember("error"); it != d.MemberEnd()) {
    t.error = tj::TaskError{.kind = text(it->value["kind"]), .message = text(it->value["message"])};
  }
  t.attempt = d["attempt"].GetInt();
  t.worker_id = opt_text(d, "worker_id");
  t.heartbeat_at = opt_time(d, "heartbeat_at");
  if (auto it = d.FindMember("links"); it != d.MemberEnd()) {
    const Value& v = it->value;
    t.links.child_session_id = opt_text(v, "child_session_id");
    t.links.remote_task_id = opt_text(v, "remote_task_id");
    if (v.HasMember("resource_ids")) {
      for (const auto& r : v["resource_ids"].GetArray()) t.links.resource_ids.push_back(text(r));
    }
  }
  t.wake_policy = *tj::parse_task_wake_policy(text(d["wake_policy"]));
  t.created_at = time_of(d["created_at"]);
  t.started_at = opt_time(d, "started_at");
  t.finished_at = opt_time(d, "finished_at");
  t.updated_at = time_of(d["updated_at"]);
  return t;
}

tj::TaskMessage message_from_json(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject()) throw std::runtime_error("bad message JSON");
  tj::TaskMessage m;
  m.id = text(d["id"]);
  m.task_id = text(d["task_id"]);
  m.direction = *tj::parse_task_message_direction(text(d["direction"]));
  for (const auto& part : d["content"].GetArray()) {
    if (text(part["type"]) == "text") {
      m.content.push_back(tj::TextPart{text(part["text"])});
    } else {
      m.content.push_back(tj::DataPart{raw_json(part["data"])});
    }
  }
  m.in_reply_to = opt_text(d, "in_reply_to");
  m.created_at = time_of(d["created_at"]);
  return m;
}

}  // namespace bench

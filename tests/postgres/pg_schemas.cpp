#include "pg_schemas.hpp"

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "store/postgres/pq.hpp"
#include "store/postgres/schema.hpp"
#include "taskjournal/reader.hpp"

namespace taskjournal::testing {

using store::postgres::Connection;
using store::postgres::quote_identifier;

PgSchema fresh_schema(const PgServer& server, std::string_view suffix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string raw = info != nullptr ? std::string(info->name()) : std::string("schema");
  if (!suffix.empty()) raw += "_" + std::string(suffix);
  std::string name = "t_";
  for (const char c : raw) {
    const auto u = static_cast<unsigned char>(c);
    name += std::isalnum(u) ? static_cast<char>(std::tolower(u)) : '_';
  }
  // The journal's NOTIFY channel, "taskjournal_<schema>", must fit an identifier (63 bytes): a
  // long name keeps its start and ends in a hash of the whole, so that names stay distinct.
  if (name.size() > 48) {
    std::uint32_t h = 2166136261u;  // FNV-1a
    for (const char c : name) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    char tail[10];
    std::snprintf(tail, sizeof tail, "_%08x", h);
    name = name.substr(0, 39) + tail;
  }
  const std::string admin = server.conninfo();
  Connection conn(admin);
  conn.exec("DROP SCHEMA IF EXISTS " + quote_identifier(name) + " CASCADE; CREATE SCHEMA " +
            quote_identifier(name));
  return {name, server.conninfo("options='-c search_path=" + name + "'"), admin};
}

std::string sql_text(const std::string& conninfo, const std::string& sql) {
  Connection conn(conninfo);
  const auto r = conn.exec(sql);
  if (r.rows() == 0 || r.columns() == 0 || r.is_null(0, 0)) return {};
  return std::string(r.bytes(0, 0));
}

std::int64_t sql_int(const std::string& conninfo, const std::string& sql) {
  return std::stoll(sql_text(conninfo, sql));
}

void sql_run(const std::string& conninfo, const std::string& sql) {
  Connection(conninfo).exec(sql);
}

std::string expect_error(const std::function<void()>& call, ErrorCode code) {
  try {
    call();
  } catch (const Error& e) {
    EXPECT_EQ(to_string(e.code()), to_string(code)) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "nothing thrown; expected taskjournal::Error(" << to_string(code) << ")";
  return {};
}

std::int64_t table_count(const std::string& admin_conninfo, const std::string& schema) {
  Connection conn(admin_conninfo);
  const auto r =
      conn.exec_params("SELECT count(*)::int8 FROM pg_catalog.pg_tables WHERE schemaname = $1",
                       store::postgres::Params().text(schema));
  return r.int8(0, 0);
}

std::string problems_of(const std::string& conninfo) {
  auto report = JournalReader::open_postgresql(conninfo).verify();
  std::string out;
  for (const auto& p : report.problems) out += p.what + "\n";
  if (!report.comparison_skipped.empty()) out += "comparison skipped: " + report.comparison_skipped;
  return out;
}

bool has_artifact(const SessionTask& task, const std::string& name) {
  for (const auto& a : task.artifacts) {
    if (a.name == name) return true;
  }
  return false;
}

}  // namespace taskjournal::testing

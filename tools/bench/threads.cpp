#include "threads.hpp"

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <stdexcept>
#include <thread>

#include "workload.hpp"

namespace bench::threads {

namespace tj = taskjournal;
using Clock = std::chrono::steady_clock;

Figures measure(int threads, double seconds,
                const std::function<std::function<void()>(int thread)>& client) {
  const auto slots = static_cast<std::size_t>(threads);
  std::barrier ready(threads + 1), done(threads + 1);
  Clock::time_point deadline;
  std::vector<std::vector<double>> latencies(slots);  // ms, per thread
  std::vector<std::exception_ptr> errors(slots);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const auto slot = static_cast<std::size_t>(t);
      std::function<void()> call;
      try {
        call = client(t);
      } catch (...) {
        errors[slot] = std::current_exception();
      }
      latencies[slot].reserve(1 << 16);
      ready.arrive_and_wait();  // the main thread sets the deadline, then arrives
      try {
        for (auto now = Clock::now(); call && now < deadline;) {
          call();
          const auto end = Clock::now();
          latencies[slot].push_back(std::chrono::duration<double, std::milli>(end - now).count());
          now = end;
        }
      } catch (...) {
        errors[slot] = std::current_exception();
      }
      done.arrive_and_wait();
    });
  }
  const auto start = Clock::now();
  deadline =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  ready.arrive_and_wait();
  done.arrive_and_wait();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& th : pool) th.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  if (all.empty()) throw std::runtime_error("a benchmark cell made no calls");
  return Figures{.calls_per_s = double(all.size()) / elapsed,
                 .p50_ms = percentile(all, 50),
                 .p99_ms = percentile(all, 99)};
}

std::function<void()> updater(tj::Registry& registry, int thread) {
  const std::string id = "task_thread_" + std::to_string(thread);
  registry.create({.session_id = "sess_threads",
                   .id = id,
                   .kind = "subagent",
                   .display_name = "Thread " + std::to_string(thread),
                   .state = tj::SessionTaskState::Running});
  return [&registry, id, k = std::uint64_t{0}]() mutable {
    registry.update("sess_threads", id,
                    {.progress = tj::TaskProgress{.current = ++k, .total = 1'000'000},
                     .heartbeat_at = wall_now()});
  };
}

Figures median_of(const std::vector<Figures>& rounds) {
  std::vector<double> rate, p50, p99;
  for (const auto& f : rounds) {
    rate.push_back(f.calls_per_s);
    p50.push_back(f.p50_ms);
    p99.push_back(f.p99_ms);
  }
  return Figures{.calls_per_s = median(rate), .p50_ms = median(p50), .p99_ms = median(p99)};
}

namespace {

std::string num(double v, int precision) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  std::string s = buf;
  if (precision == 0) {
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) {
      s.insert(static_cast<std::size_t>(i), ",");
    }
  }
  return s;
}
std::string ms(double v) { return num(v, v < 10 ? 2 : 1); }
std::string times(double a, double b) { return b > 0 ? num(a / b, 2) + "×" : "n/a"; }
const char* name(tj::Durability d) { return d == tj::Durability::Full ? "Full" : "Normal"; }

const Figures* find(const std::vector<Row>& rows, const std::string& variant, tj::Durability d,
                    int threads) {
  for (const auto& r : rows) {
    if (r.variant == variant && r.durability == d && r.threads == threads) return &r.figures;
  }
  return nullptr;
}

}  // namespace

std::vector<std::string> table(const std::vector<Row>& rows, const std::string& raw_label) {
  std::vector<std::string> out;
  out.push_back(
      "| durability | threads | taskjournal calls/s | p50 ms | p99 ms | "
      "no group commit calls/s | p50 ms | p99 ms | " +
      raw_label +
      " commits/s | p50 ms | p99 ms | tj / tj 1 thread | tj / no group commit | "
      "tj / raw |");
  out.push_back("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const auto d : {tj::Durability::Full, tj::Durability::Normal}) {
    const Figures* one = find(rows, "taskjournal", d, 1);
    for (int t : kThreadCounts) {
      const Figures* g = find(rows, "taskjournal", d, t);
      const Figures* n = find(rows, "taskjournal, no group commit", d, t);
      const Figures* r = find(rows, "raw", d, t);
      if (!g || !n || !r || !one) continue;
      out.push_back("| " + std::string(name(d)) + " | " + std::to_string(t) + " | " +
                    num(g->calls_per_s, 0) + " | " + ms(g->p50_ms) + " | " + ms(g->p99_ms) + " | " +
                    num(n->calls_per_s, 0) + " | " + ms(n->p50_ms) + " | " + ms(n->p99_ms) + " | " +
                    num(r->calls_per_s, 0) + " | " + ms(r->p50_ms) + " | " + ms(r->p99_ms) + " | " +
                    times(g->calls_per_s, one->calls_per_s) + " | " +
                    times(g->calls_per_s, n->calls_per_s) + " | " +
                    times(g->calls_per_s, r->calls_per_s) + " |");
    }
  }
  return out;
}

std::vector<std::string> goals(const std::vector<Row>& rows, const std::string& engine) {
  std::vector<std::string> out;
  auto verdict = [](double r, double goal) { return r >= goal ? "met" : "**not met**"; };
  const Figures* one = find(rows, "taskjournal", tj::Durability::Full, 1);
  const Figures* sixteen = find(rows, "taskjournal", tj::Durability::Full, 16);
  if (one && sixteen) {
    const double r = sixteen->calls_per_s / one->calls_per_s;
    out.push_back("| " + engine + ": 16 threads / 1 thread, Full, ≥ 6 | " + num(r, 2) + " | " +
                  verdict(r, 6.0) + " |");
  }
  for (const auto d : {tj::Durability::Full, tj::Durability::Normal}) {
    const Figures* g = find(rows, "taskjournal", d, 1);
    const Figures* n = find(rows, "taskjournal, no group commit", d, 1);
    if (!g || !n) continue;
    const double r = g->calls_per_s / n->calls_per_s;
    out.push_back("| " + engine + ": 1 thread, group commit / none, " + name(d) + ", ≥ 0.95 | " +
                  num(r, 2) + " | " + verdict(r, 0.95) + " |");
  }
  return out;
}

}  // namespace bench::threads

// events::new_id: the ids the registry generates for tasks and messages (RFC 9562 UUIDv7).
#include "events/ids.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace {

using taskjournal::Timestamp;
using taskjournal::events::new_id;
using namespace std::chrono_literals;

const Timestamp kAt = Timestamp{std::chrono::sys_days{std::chrono::year{2026} / 1 / 2}} + 123ms;

TEST(Ids, AreThePrefixAndAUuidv7InSimpleForm) {
  const std::string id = new_id("task_", kAt);
  ASSERT_EQ(id.size(), 5u + 32u) << id;
  EXPECT_EQ(id.substr(0, 5), "task_");
  const std::string hex = id.substr(5);
  EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  EXPECT_EQ(hex[12], '7') << "version nibble: " << id;
  EXPECT_NE(std::string("89ab").find(hex[16]), std::string::npos) << "variant bits: " << id;
  char time_hex[16];
  std::snprintf(
      time_hex, sizeof time_hex, "%012llx",
      static_cast<unsigned long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(kAt.time_since_epoch()).count()));
  EXPECT_EQ(hex.substr(0, 12), time_hex);
}

TEST(Ids, MadeInOneMillisecondSortInTheOrderTheyWereMade) {
  std::vector<std::string> ids;
  for (int i = 0; i < 20000; ++i) ids.push_back(new_id("tmsg_", kAt));
  EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
  for (const auto& id : ids) ASSERT_EQ(id.substr(5, 12), ids.front().substr(5, 12)) << id;
}

TEST(Ids, ALaterMillisecondSortsAfterAndAnEarlierOneBefore) {
  const std::string now = new_id("t", kAt);
  EXPECT_LT(now, new_id("t", kAt + 1ms));
  EXPECT_GT(now, new_id("t", kAt - 1ms));
}

TEST(Ids, ThreadsMakingIdsAtOnceNeverCollideAndEachSeesThemSorted) {
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::vector<std::string>> made(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) made[t].push_back(new_id("task_", kAt));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& ids : made) {
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
}

TEST(Ids, AForkedChildDoesNotRepeatItsParentsNextIds) {
  new_id("task_", kAt);  // the parent has state for this millisecond
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string id = new_id("task_", kAt);
    const bool ok = ::write(fds[1], id.data(), id.size()) == static_cast<ssize_t>(id.size());
    ::_exit(ok ? 0 : 1);
  }
  ::close(fds[1]);
  char buf[64] = {};
  const ssize_t n = ::read(fds[0], buf, sizeof buf);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_EQ(n, 37);
  const std::string child(buf, static_cast<std::size_t>(n));
  const std::string parent = new_id("task_", kAt);
  EXPECT_NE(child, parent);
  // The child started afresh from the CSPRNG, not from the parent's last random bits: the two
  // share the time field and nothing else beyond chance.
  EXPECT_EQ(child.substr(5, 12), parent.substr(5, 12));
  EXPECT_NE(child.substr(5 + 13, 8), parent.substr(5 + 13, 8));
}

TEST(Ids, RandomBitsDifferBetweenMilliseconds) {
  std::set<std::string> randoms;
  for (int i = 0; i < 100; ++i)
    randoms.insert(new_id("", kAt + std::chrono::milliseconds(i)).substr(13));
  EXPECT_EQ(randoms.size(), 100u);
}

}  // namespace

// store::Handoff, the bounded queue between the thread that reads the journal and the one that
// folds it: items in order, a full queue blocks the producer, close() ends the stream (and hands
// over the producer's exception after the queued items), stop() turns later pushes away.
//
// No timings: where a test must know that a thread is blocked, it checks that the thread has not
// got past the blocking call after the other side was made to wait for it through the queue.
#include "store/handoff.hpp"

#include <atomic>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace taskjournal::store {
namespace {

TEST(Handoff, ItemsComeOutInTheOrderTheyWentIn) {
  Handoff<int> q(8);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(q.push(int{i}));
  q.close();
  std::vector<int> out;
  while (auto item = q.pop()) out.push_back(*item);
  EXPECT_EQ(out, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Handoff, PopAfterTheLastItemOfAClosedQueueIsNulloptEveryTime) {
  Handoff<std::string> q(2);
  ASSERT_TRUE(q.push("a"));
  q.close();
  EXPECT_EQ(q.pop(), "a");
  EXPECT_EQ(q.pop(), std::nullopt);
  EXPECT_EQ(q.pop(), std::nullopt);
}

TEST(Handoff, MoveOnlyItemsAreHandedOver) {
  Handoff<std::unique_ptr<int>> q(1);
  ASSERT_TRUE(q.push(std::make_unique<int>(7)));
  q.close();
  auto item = q.pop();
  ASSERT_TRUE(item && *item);
  EXPECT_EQ(**item, 7);
}

TEST(Handoff, CloseWithAnErrorRethrowsItAfterTheQueuedItems) {
  Handoff<int> q(4);
  ASSERT_TRUE(q.push(1));
  ASSERT_TRUE(q.push(2));
  q.close(std::make_exception_ptr(std::runtime_error("read failed at event 3")));
  EXPECT_EQ(q.pop(), 1);
  EXPECT_EQ(q.pop(), 2);
  try {
    q.pop();
    FAIL() << "pop after the items did not rethrow the producer's error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "read failed at event 3");
  }
  // The error stays: a consumer that asks again hears it again.
  EXPECT_THROW(q.pop(), std::runtime_error);
}

TEST(Handoff, CloseWithoutItemsAndWithAnErrorThrowsAtOnce) {
  Handoff<int> q(1);
  q.close(std::make_exception_ptr(std::logic_error("no journal")));
  EXPECT_THROW(q.pop(), std::logic_error);
}

TEST(Handoff, StopMakesEveryLaterPushReturnFalseAndDropTheItem) {
  Handoff<int> q(4);
  ASSERT_TRUE(q.push(1));
  q.stop();
  EXPECT_FALSE(q.push(2));
  EXPECT_FALSE(q.push(3));
  q.close();
  EXPECT_EQ(q.pop(), 1);  // what was queued before stop() is still there
  EXPECT_EQ(q.pop(), std::nullopt);
}

TEST(Handoff, AFullQueueBlocksThePushUntilTheConsumerTakesAnItem) {
  Handoff<int> q(2);
  ASSERT_TRUE(q.push(0));
  ASSERT_TRUE(q.push(1));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    EXPECT_TRUE(q.push(2));  // the queue is full: waits for room
    pushed = true;
    q.close();
  });
  // The producer cannot have pushed: the queue still holds both items, none was taken.
  EXPECT_FALSE(pushed.load());
  EXPECT_EQ(q.pop(), 0);  // makes room
  EXPECT_EQ(q.pop(), 1);
  EXPECT_EQ(q.pop(), 2);             // waits for the producer's push
  EXPECT_EQ(q.pop(), std::nullopt);  // waits for close(), which follows `pushed = true`
  EXPECT_TRUE(pushed.load());
  producer.join();
}

TEST(Handoff, StopReleasesAProducerBlockedOnAFullQueue) {
  Handoff<int> q(1);
  ASSERT_TRUE(q.push(0));
  std::promise<bool> result;
  std::thread producer([&] { result.set_value(q.push(1)); });
  q.stop();  // whether the producer waits already or not, its push must now fail
  EXPECT_FALSE(result.get_future().get());
  producer.join();
}

TEST(Handoff, PopWaitsForTheProducer) {
  Handoff<int> q(1);
  std::promise<void> go;
  std::thread producer([&] {
    go.get_future().wait();
    EXPECT_TRUE(q.push(42));
    q.close();
  });
  go.set_value();
  EXPECT_EQ(q.pop(), 42);  // may run before the push: waits for it
  EXPECT_EQ(q.pop(), std::nullopt);
  producer.join();
}

TEST(Handoff, ProducerAndConsumerThreadsPassManyItemsInOrder) {
  constexpr int kItems = 20000;
  Handoff<int> q(3);
  std::thread producer([&] {
    for (int i = 0; i < kItems; ++i) {
      if (!q.push(int{i})) return;
    }
    q.close();
  });
  int expected = 0;
  bool in_order = true;
  while (auto item = q.pop()) {
    in_order = in_order && *item == expected;
    ++expected;
  }
  producer.join();
  EXPECT_TRUE(in_order);
  EXPECT_EQ(expected, kItems);
}

TEST(Handoff, ConsumerThatGivesUpEarlyStopsTheProducer) {
  Handoff<int> q(2);
  std::promise<int> pushed;
  std::thread producer([&] {
    int n = 0;
    while (q.push(int{n})) ++n;  // ends only when the consumer stops it
    pushed.set_value(n);
    q.close();
  });
  for (int i = 0; i < 10; ++i) ASSERT_EQ(q.pop(), i);
  q.stop();
  const int n = pushed.get_future().get();
  producer.join();
  EXPECT_GE(n, 10);
  EXPECT_LE(n, 10 + 2);  // at most a full queue beyond what was taken
  // What was queued before stop() comes out, in order, then the end.
  int next = 10;
  while (auto item = q.pop()) EXPECT_EQ(*item, next++);
  EXPECT_EQ(next, n);
}

TEST(Handoff, ProducerErrorReachesTheConsumerThreadAfterItsItems) {
  Handoff<int> q(2);
  std::thread producer([&] {
    try {
      for (int i = 0; i < 100; ++i) {
        if (i == 50) throw std::runtime_error("event 51: hash mismatch");
        q.push(int{i});
      }
      q.close();
    } catch (...) {
      q.close(std::current_exception());
    }
  });
  int count = 0;
  try {
    while (auto item = q.pop()) {
      EXPECT_EQ(*item, count);
      ++count;
    }
    ADD_FAILURE() << "the stream ended without the producer's error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "event 51: hash mismatch");
  }
  producer.join();
  EXPECT_EQ(count, 50);
}

}  // namespace
}  // namespace taskjournal::store

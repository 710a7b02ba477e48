#include "daemon/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace siteprobe;

namespace {

// A real notification socket, as systemd would provide, and the environment that names it.
struct NotifySocket {
  std::string path = "/tmp/siteprobe-notify-test." + std::to_string(getpid());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  NotifySocket(const char* watchdog_usec) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strcpy(sa.sun_path, path.c_str());
    unlink(path.c_str());
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
    setenv("NOTIFY_SOCKET", path.c_str(), 1);
    setenv("WATCHDOG_USEC", watchdog_usec, 1);
    unsetenv("WATCHDOG_PID");
  }
  ~NotifySocket() {
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    close(fd);
    unlink(path.c_str());
  }
  std::vector<std::string> received() {
    std::vector<std::string> out;
    char buf[512];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;)
      out.emplace_back(buf, static_cast<std::size_t>(n));
    return out;
  }
};

// Runs `loop` for `ms` milliseconds, calling `tick` every 10 ms.
void run_for(uv_loop_t* loop, std::uint64_t ms, void (*tick)(uv_timer_t*), void* data) {
  uv_timer_t end{}, t{};
  uv_timer_init(loop, &end);
  uv_timer_init(loop, &t);
  t.data = data;
  uv_timer_start(
      &end, [](uv_timer_t* h) { uv_stop(h->loop); }, ms, 0);
  if (tick) uv_timer_start(&t, tick, 10, 10);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&end), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
}

}  // namespace

TEST_CASE("notify sends datagrams to NOTIFY_SOCKET") {
  NotifySocket s("0");
  notify("READY=1");
  notify("RELOADING=1\n" + monotonic_usec());
  const auto got = s.received();
  REQUIRE(got.size() == 2);
  CHECK(got[0] == "READY=1");
  CHECK(got[1].rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
}

TEST_CASE("watchdog pings only while probe rounds complete") {
  NotifySocket s("20000");  // ping every 10 ms
  uv_loop_t loop;
  uv_loop_init(&loop);
  Watchdog w;
  w.start(&loop);
  w.expect(100);  // a stall after 100 ms without a completed round

  // Rounds complete every 10 ms: pings all along (about 30 in 300 ms).
  run_for(
      &loop, 300, [](uv_timer_t* t) { static_cast<Watchdog*>(t->data)->progress(); }, &w);
  const auto alive = w.pings();
  CHECK(alive >= 10);  // loose: a loaded CI host runs timers late (exact counts: the injected-clock test)

  // No more rounds: pings go on for the 100 ms grace, then stop.
  run_for(&loop, 400, nullptr, nullptr);
  const auto stalled = w.pings() - alive;
  CHECK(stalled >= 2);
  CHECK(stalled <= 20);  // without the stall check: about 40
  const auto got = s.received();
  CHECK(!got.empty());  // the socket queues only about 10 datagrams; the rest were dropped
  for (const auto& m : got) CHECK(m == "WATCHDOG=1");

  // Nothing to probe (expect(0)): never a stall.
  w.expect(0);
  const auto before = w.pings();
  run_for(&loop, 200, nullptr, nullptr);
  CHECK(w.pings() - before >= 12);

  w.close();
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("watchdog on an injected clock: pings while rounds complete, stops after the grace") {
  std::uint64_t now = 1000;
  Watchdog w([&] { return now; });
  w.expect(100);  // at t=1000
  int pinged = 0;
  for (; now <= 1300; now += 10) {  // a round completes every 10 ms
    w.progress();
    pinged += w.tick();
  }
  CHECK(pinged == 31);
  // Last round at t=1300: ticks at 1310..1400 still ping (100 ms of grace), 1410 on do not.
  pinged = 0;
  for (; now <= 1600; now += 10) pinged += w.tick();
  CHECK(pinged == 10);
  CHECK_FALSE(w.tick());
  w.progress();  // rounds resume: pings resume
  CHECK(w.tick());
  w.expect(0);  // nothing to probe: never stuck
  now += 1000000;
  CHECK(w.tick());
  CHECK(w.pings() == 43);
}

TEST_CASE("no watchdog without WATCHDOG_USEC or for another WATCHDOG_PID") {
  NotifySocket s("20000");
  setenv("WATCHDOG_PID", "1", 1);
  uv_loop_t loop;
  uv_loop_init(&loop);
  Watchdog w;
  w.start(&loop);
  run_for(&loop, 50, nullptr, nullptr);
  CHECK(w.pings() == 0);
  CHECK(s.received().empty());
  w.close();
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

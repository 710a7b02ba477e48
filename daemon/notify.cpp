#include "daemon/notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <ctime>

namespace siteprobe {

void notify(const std::string& state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (!path || (path[0] != '/' && path[0] != '@')) return;
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  const std::size_t len = std::strlen(path);
  if (len >= sizeof sa.sun_path) return;
  std::memcpy(sa.sun_path, path, len);
  if (path[0] == '@') sa.sun_path[0] = '\0';
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  // Non-blocking: the loop never waits on the service manager.
  sendto(fd, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&sa),
         static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
  ::close(fd);
}

std::string monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return "MONOTONIC_USEC=" + std::to_string(static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
                                            static_cast<std::uint64_t>(ts.tv_nsec) / 1000u);
}

void Watchdog::start(uv_loop_t* loop) {
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  if (!usec || (pid && std::strtol(pid, nullptr, 10) != getpid())) return;
  const std::uint64_t every_ms = std::strtoull(usec, nullptr, 10) / 2000;
  if (every_ms == 0) return;
  loop_ = loop;
  uv_must(timer_.init([loop](uv_timer_t* t) { return uv_timer_init(loop, t); }), "uv_timer_init");
  timer_.get()->data = this;
  last_progress_ = now();
  uv_must(
      uv_timer_start(
          timer_.get(), [](uv_timer_t* t) noexcept { static_cast<Watchdog*>(t->data)->tick(); }, 0, every_ms),
      "uv_timer_start");
}

bool Watchdog::tick() {
  if (stall_after_ms_ != 0 && now() - last_progress_ > stall_after_ms_)
    return false;  // probing is stuck: let systemd's watchdog fire
  ++pings_;
  notify("WATCHDOG=1");
  return true;
}

void Watchdog::expect(std::uint64_t stall_after_ms) {
  stall_after_ms_ = stall_after_ms;
  progress();
}

}  // namespace siteprobe

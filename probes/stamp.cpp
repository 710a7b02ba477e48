#include "probes/stamp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <unordered_map>

#include "util/emodel.h"
#include "util/net.h"

namespace siteprobe::probes {
namespace {

constexpr std::int64_t kMs = 1000000;
constexpr std::int64_t kProbeGap = 200 * kMs, kProbeWait = 1400 * kMs;  // looking for the reflector
constexpr std::int64_t kMaxBehind = 20 * kMs;  // later than this, a packet is skipped, not sent
constexpr int kMaxPerTick = 64;
constexpr std::uint32_t kMaxPackets = 2000000;

timespec realtime() {
  timespec t{};
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

std::mt19937& random() {
  static std::mt19937 r{std::random_device{}()};
  return r;
}

std::string percent(double ratio) {
  char b[32];
  std::snprintf(b, sizeof b, ratio < 0.1 ? "%.1f %%" : "%.0f %%", ratio * 100);
  return b;
}
std::string rate(double bps) {
  char b[32];
  if (bps >= 1e6)
    std::snprintf(b, sizeof b, "%g Mbit/s", std::round(bps / 1e5) / 10);
  else
    std::snprintf(b, sizeof b, "%g kbit/s", std::round(bps / 1e3));
  return b;
}

}  // namespace

BlockSchema stamp_block() {
  std::vector<std::string> dscps = {"BE", "EF"};
  for (int c = 0; c <= 7; ++c) dscps.push_back("CS" + std::to_string(c));
  for (int c = 1; c <= 4; ++c)
    for (int p = 1; p <= 3; ++p) dscps.push_back("AF" + std::to_string(c) + std::to_string(p));
  return {"stamp",
          {"router"},
          {{"port", BlockKey::Kind::Int, "862", 1, 65535},
           {"reflector", BlockKey::Kind::Address, ""},
           {"bitrate_kbps", BlockKey::Kind::Int, "2000", 8, 1000000},
           {"packet_size", BlockKey::Kind::Int, "1200", 60, 1472},
           {"dscp", BlockKey::Kind::String, "AF41", 0, 0, dscps},
           {"duration", BlockKey::Kind::Time, "20s", 1000, 300000},
           {"timeout", BlockKey::Kind::Time, "2s", 100, 10000},
           {"max_loss_percent", BlockKey::Kind::Int, "1", 0, 100}}};
}

std::string stream_spec(const BlockSettings& b, const sockaddr_storage& addr, StreamSpec& s) {
  s.to = addr;
  if (const auto& r = b.text("reflector"); !r.empty()) {
    s.to = {};
    const auto ip = net::parse_ip(r);
    if (!ip) return "stamp.reflector \"" + r + "\" is not an IP address";
    s.to = *ip;
  }
  if (s.to.ss_family != AF_INET && s.to.ss_family != AF_INET6) return "no address";
  net::set_port(s.to, static_cast<int>(b.integer("port")));
  s.bitrate_bps = static_cast<double>(b.integer("bitrate_kbps")) * 1000;
  s.packet_size = static_cast<std::size_t>(b.integer("packet_size"));
  s.dscp = stamp::parse_dscp(b.text("dscp")).value_or(34);
  s.duration = b.duration("duration");
  s.timeout = b.duration("timeout");
  s.max_loss = static_cast<double>(b.integer("max_loss_percent")) / 100;
  return "";
}

// ---- StreamStats

StreamStats::StreamStats(const StreamSpec& spec, std::uint32_t base) : spec_(spec), base_(base) {}

void StreamStats::sent(std::uint32_t seq, std::int64_t mono_ns, std::uint64_t ntp) {
  if (seq != slots_.size()) return;  // seqs are sent in order, each once
  Slot s;
  s.mono_ns = mono_ns;
  s.ntp = ntp;
  slots_.push_back(s);
}

void StreamStats::skipped(std::uint32_t seq) {
  if (seq != slots_.size()) return;
  Slot s;
  s.skipped = true;
  slots_.push_back(s);
  ++skipped_;
}

bool StreamStats::reply(const stamp::ReflectedPacket& r, std::int64_t mono_ns, std::uint64_t ntp,
                        int reply_dscp) {
  // It must answer a packet we sent, with the timestamp we put in it: anything else is forged,
  // stale (an earlier stream's) or garbled.
  const std::uint32_t i = r.sender_seq - base_;
  if (i >= slots_.size() || slots_[i].skipped || slots_[i].ntp != r.sender_timestamp) {
    ++invalid_;
    return false;
  }
  Slot& s = slots_[i];
  if (s.got) {
    ++duplicates_;
    return true;
  }
  s.got = true;
  ++received_;
  if (any_ && i < max_seq_) ++reordered_;
  max_seq_ = std::max(max_seq_, i);
  any_ = true;
  s.reflector_seq = r.seq;
  stateful_ = stateful_ || r.seq != r.sender_seq;
  // The reflector's time between receiving and sending is not path delay; ignore it if its clock
  // says something impossible.
  double rtt = static_cast<double>(mono_ns - s.mono_ns) / 1e9;
  const double held = stamp::ntp_seconds(r.timestamp, r.receive_timestamp);
  if (held > 0 && held < rtt) rtt -= held;
  s.rtt = rtt;
  s.forward = stamp::ntp_seconds(r.receive_timestamp, s.ntp);
  s.reverse = stamp::ntp_seconds(ntp, r.timestamp);
  rtts_.push_back(rtt);
  if (r.cos) {
    ++cos_seen_;
    if (r.cos->dscp2 != spec_.dscp) ++fwd_rewritten_, fwd_dscp_ = r.cos->dscp2;
    if (r.cos->rp == 0 && reply_dscp >= 0) {
      ++rev_checked_;
      if (reply_dscp != r.cos->dscp1) ++rev_rewritten_, rev_dscp_ = static_cast<std::uint8_t>(reply_dscp);
    }
  }
  return true;
}

PathTestSummary StreamStats::summary() const {
  PathTestSummary p;
  p.bitrate_bps = spec_.bitrate_bps;
  p.sent = slots_.size() - skipped_;
  p.received = received_;
  p.finished_unix = static_cast<double>(realtime().tv_sec);
  const auto port =
      ntohs(spec_.to.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(spec_.to).sin6_port
                                           : reinterpret_cast<const sockaddr_in&>(spec_.to).sin_port);
  if (received_ == 0) {
    p.verdict = PathTestSummary::Verdict::NoReflector;
    p.reason = port_closed_ ? "no reflector (UDP port " + std::to_string(port) + " closed)"
                            : "no reflector (nothing answered on UDP port " + std::to_string(port) + ")";
    p.loss_ratio = 1;
    p.dscp = "unknown";
    return p;
  }
  // Loss over the stream proper (the probes ran at low rate), by direction where the reflector
  // keeps its own sequence (stateful): between the first and last answered packets, a gap in the
  // reflector's numbers is forward loss, the rest reverse; packets before the first or after the
  // last answered one count as forward.
  std::uint64_t stream_sent = 0, stream_got = 0;
  const Slot *first = nullptr, *last = nullptr;
  for (std::size_t i = StreamStats::kProbes; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.skipped) continue;
    ++stream_sent;
    if (!s.got) continue;
    ++stream_got;
    if (!first) first = &s;
    last = &s;
  }
  if (stream_sent == 0) {  // a reply to a probe, then nothing sent: the test was stopped
    p.verdict = PathTestSummary::Verdict::Failed;
    p.reason = "path test stopped before its stream";
    return p;
  }
  p.loss_ratio = 1 - static_cast<double>(stream_got) / static_cast<double>(stream_sent);
  if (stateful_ && first && last && last->reflector_seq >= first->reflector_seq) {
    const double reflected = static_cast<double>(last->reflector_seq - first->reflector_seq) + 1;
    const auto all = static_cast<double>(stream_sent);
    p.loss_forward = std::clamp((all - reflected) / all, 0.0, 1.0);
    p.loss_reverse = std::clamp((reflected - static_cast<double>(stream_got)) / reflected, 0.0, 1.0);
  }
  // RTT median; delay variation (RFC 3393 IPDV) between consecutive packets both answered, per
  // direction (the clock offset between the hosts cancels out) and round trip.
  std::vector<double> r = rtts_;
  if (!r.empty()) {
    std::nth_element(r.begin(), r.begin() + static_cast<std::ptrdiff_t>(r.size() / 2), r.end());
    p.rtt_median_seconds = r[r.size() / 2];
  }
  double ipdv = 0, fwd = 0, rev = 0;
  int pairs = 0;
  for (std::size_t i = 1; i < slots_.size(); ++i)
    if (slots_[i].got && slots_[i - 1].got) {
      ipdv += std::abs(slots_[i].rtt - slots_[i - 1].rtt);
      fwd += std::abs(slots_[i].forward - slots_[i - 1].forward);
      rev += std::abs(slots_[i].reverse - slots_[i - 1].reverse);
      ++pairs;
    }
  if (pairs) p.ipdv_seconds = ipdv / pairs;
  p.ipdv_forward_seconds = pairs ? fwd / pairs : 0;
  p.ipdv_reverse_seconds = pairs ? rev / pairs : 0;
  const EModel e = emodel(p.rtt_median_seconds, p.ipdv_seconds, p.loss_ratio);
  p.r_factor = e.r;
  p.mos = e.mos;
  // DSCP: what the reflector says it received (CoS TLV), and what its replies arrived with.
  std::string qos;
  if (cos_seen_ == 0) {
    p.dscp = "unknown";
  } else if (fwd_rewritten_ > 0) {
    p.dscp = "rewritten to " + stamp::dscp_name(fwd_dscp_);
    p.dscp_forward = 0;
    qos = "QoS mark rewritten to " + stamp::dscp_name(fwd_dscp_) + " on the way there (sent " +
          stamp::dscp_name(spec_.dscp) + ")";
  } else {
    p.dscp = "unchanged";
    p.dscp_forward = 1;
  }
  if (rev_checked_ > 0) {
    p.dscp_reverse = rev_rewritten_ > 0 ? 0 : 1;
    if (rev_rewritten_ > 0 && qos.empty())
      qos = "QoS mark rewritten to " + stamp::dscp_name(rev_dscp_) + " on the way back";
  }
  const std::string at = " at " + rate(spec_.bitrate_bps);
  if (stream_got == 0) {
    p.verdict = PathTestSummary::Verdict::AllLost;
    p.reason = "the path dropped the whole stream" + at + " (the reflector answered at low rate)";
  } else if (p.loss_ratio > spec_.max_loss) {
    p.verdict = PathTestSummary::Verdict::Loss;
    p.reason = "loss " + percent(p.loss_ratio) + at;
  } else if (!qos.empty()) {
    p.verdict = PathTestSummary::Verdict::QosRewritten;
    p.reason = qos;
  } else {
    p.verdict = PathTestSummary::Verdict::Ok;
  }
  if (p.verdict != PathTestSummary::Verdict::Ok && p.verdict != PathTestSummary::Verdict::QosRewritten &&
      !qos.empty())
    p.reason += "; " + qos;
  return p;
}

// ---- StampStream

StampStream::StampStream(uv_loop_t* loop, const StreamSpec& spec, DoneFn done)
    : loop_(loop),
      spec_(spec),
      done_(std::move(done)),
      stats_(spec, std::uniform_int_distribution<std::uint32_t>(1U << 20, 1U << 30)(random())),
      buf_(stamp::kMaxPacket) {}

StampStream::~StampStream() {
  poll_.reset();
  timer_.reset();
  if (fd_ >= 0) ::close(fd_);
}

std::string StampStream::start() {
  const int af = spec_.to.ss_family;
  fd_ = ::socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return std::string("socket: ") + std::strerror(errno);
  const int tos = spec_.dscp << 2, one = 1;
  const bool v6 = af == AF_INET6;
  if (setsockopt(fd_, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TCLASS : IP_TOS, &tos, sizeof tos) != 0 ||
      setsockopt(fd_, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_RECVTCLASS : IP_RECVTOS, &one, sizeof one) !=
          0 ||
      setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0)
    return std::string("setsockopt: ") + std::strerror(errno);
  const socklen_t len = v6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&spec_.to), len) != 0)
    return std::string("connect: ") + std::strerror(errno);
  if (const int rc = poll_.init([&](uv_poll_t* p) { return uv_poll_init(loop_, p, fd_); }))
    return std::string("uv_poll_init: ") + uv_strerror(rc);
  poll_.get()->data = this;
  uv_must(
      uv_poll_start(poll_.get(), UV_READABLE,
                    [](uv_poll_t* p, int, int) noexcept { static_cast<StampStream*>(p->data)->readable(); }),
      "uv_poll_start");
  uv_must(timer_.init([&](uv_timer_t* t) { return uv_timer_init(loop_, t); }), "uv_timer_init");
  timer_.get()->data = this;
  const double bits = static_cast<double>(spec_.packet_size + (spec_.to.ss_family == AF_INET6 ? 48 : 28)) * 8;
  interval_ns_ = std::max<std::int64_t>(1, static_cast<std::int64_t>(bits / spec_.bitrate_bps * 1e9));
  const auto dur = std::chrono::duration_cast<std::chrono::nanoseconds>(spec_.duration).count();
  total_ = StreamStats::kProbes + static_cast<std::uint32_t>(std::min<std::int64_t>(
                                      kMaxPackets, std::max<std::int64_t>(1, dur / interval_ns_)));
  start_ns_ = static_cast<std::int64_t>(uv_hrtime());
  arm(0);
  return "";
}

bool StampStream::send(std::uint32_t seq, std::int64_t now) {
  stamp::SenderPacket p;
  p.seq = stats_.base() + seq;
  p.timestamp = stamp::to_ntp(realtime());
  p.ssid = spec_.ssid;
  p.cos = stamp::ClassOfService{spec_.dscp, 0, 0, 0};
  if (!stamp::encode_sender(p, buf_.data(), spec_.packet_size)) return false;
  stats_.sent(seq, now, p.timestamp);
  // A full socket buffer or a transient error is a packet not sent; the reply never comes and
  // it counts as lost, which is what the path would do with it too.
  (void)::send(fd_, buf_.data(), spec_.packet_size, 0);
  return true;
}

// Wakes the loop when the next packet (or the end) is due, not every millisecond: libuv timers have
// millisecond resolution, so the wake-up is rounded down and a packet goes out at most ~1 ms late.
void StampStream::arm(std::int64_t due_ns) {
  const auto now = static_cast<std::int64_t>(uv_hrtime());
  const auto ms =
      static_cast<std::uint64_t>(std::max<std::int64_t>(due_ns > now ? 1 : 0, (due_ns - now) / kMs));
  uv_must(
      uv_timer_start(
          timer_.get(), [](uv_timer_t* t) noexcept { static_cast<StampStream*>(t->data)->tick(); }, ms, 0),
      "uv_timer_start");
}

void StampStream::tick() noexcept {
  const auto now = static_cast<std::int64_t>(uv_hrtime());
  if (next_ < StreamStats::kProbes) {  // looking for the reflector
    while (next_ < StreamStats::kProbes && now >= start_ns_ + next_ * kProbeGap) send(next_++, now);
    arm(next_ < StreamStats::kProbes ? start_ns_ + next_ * kProbeGap : now + kMs);
    return;
  }
  if (stream_start_ns_ == 0) {
    if (stats_.received() > 0) {
      stream_start_ns_ = now;
    } else {
      if (now - start_ns_ >= kProbeWait) return finish();
      return arm(now + kMs);
    }
  }
  const auto due = [&] { return stream_start_ns_ + (next_ - StreamStats::kProbes) * interval_ns_; };
  for (int n = 0; next_ < total_ && n < kMaxPerTick && due() <= now;) {
    if (now - due() > kMaxBehind) {  // our own stall: skip, never count it as loss
      stats_.skipped(next_++);
      continue;
    }
    send(next_++, now);
    ++n;
  }
  if (next_ < total_) return arm(std::max(due(), now));
  if (end_ns_ == 0) end_ns_ = now;
  const auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(spec_.timeout).count();
  if (now - end_ns_ >= wait) return finish();
  arm(end_ns_ + wait);
}

void StampStream::readable() noexcept {
  for (int i = 0; i < 256; ++i) {
    iovec iov{buf_.data(), buf_.size()};
    alignas(cmsghdr) char control[256];
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_, &m, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == ECONNREFUSED) {
        stats_.port_closed();
        continue;
      }
      return;  // EAGAIN, or an error the next read will see again
    }
    timespec rx{};
    int dscp = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS)
        std::memcpy(&rx, CMSG_DATA(c), sizeof rx);
      else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS)
        dscp = *reinterpret_cast<const unsigned char*>(CMSG_DATA(c)) >> 2;
      else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
        int tc = 0;
        std::memcpy(&tc, CMSG_DATA(c), sizeof tc);
        dscp = (tc & 0xff) >> 2;
      }
    }
    const timespec now_real = realtime();
    auto mono = static_cast<std::int64_t>(uv_hrtime());
    if (rx.tv_sec != 0) {  // the kernel's receive time, on our monotonic clock
      const std::int64_t ago = (now_real.tv_sec - rx.tv_sec) * 1000000000LL + (now_real.tv_nsec - rx.tv_nsec);
      if (ago > 0 && ago < kMs * 10000) mono -= ago;
    } else {
      rx = now_real;
    }
    stamp::Invalid why{};
    const auto r = stamp::decode_reflected(buf_.data(), static_cast<std::size_t>(n), &why);
    if (!r) {
      stats_.invalid();
      continue;
    }
    stats_.reply(*r, mono, stamp::to_ntp(rx), dscp);
  }
}

void StampStream::finish() noexcept {
  poll_.reset();
  timer_.reset();
  if (fd_ >= 0) ::close(fd_), fd_ = -1;
  auto done = std::move(done_);
  if (done) done(stats_.summary(), stats_);  // may destroy this: nothing after it
}

// ---- the prober: queue, caps and series

namespace {

const std::vector<double> kRttBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
constexpr int kVerdicts = 6;

struct PathSeries {
  explicit PathSeries(std::shared_ptr<const DeviceLabels> l)
      : device(std::move(l)), labels(device->text), rtt(kRttBounds) {}
  std::size_t pos = 0;
  std::shared_ptr<const DeviceLabels> device;
  const std::string& labels;  // device->text
  Count runs[kVerdicts], sent, received, duplicates, reordered;
  Value loss{std::nan("")}, loss_forward{std::nan("")}, loss_reverse{std::nan("")}, ipdv{std::nan("")},
      ipdv_forward{std::nan("")}, ipdv_reverse{std::nan("")}, r{std::nan("")}, mos{std::nan("")},
      dscp_forward{std::nan("")}, dscp_reverse{std::nan("")}, bitrate, last_run, ok;
  Histogram rtt;
};

class PathExposition final : public Exposition {
 public:
  SeriesSet<PathSeries> series;
  Value running, queued;
  Count invalid, skipped;
  Parts parts() const override {
    auto globals = std::make_shared<std::string>();
    append_header(*globals, "siteprobe_path_test_streams");
    append_line(*globals, "siteprobe_path_test_streams", "state=\"running\"", running.get());
    append_line(*globals, "siteprobe_path_test_streams", "state=\"queued\"", queued.get());
    append_header(*globals, "siteprobe_path_test_invalid_packets_total");
    append_line(*globals, "siteprobe_path_test_invalid_packets_total", "", invalid.get());
    append_header(*globals, "siteprobe_path_test_skipped_packets_total");
    append_line(*globals, "siteprobe_path_test_skipped_packets_total", "", skipped.get());
    using S = std::shared_ptr<const PathSeries>;
    std::vector<SeriesFamily<S>> f;
    const auto gauge = [&](const char* name, const Value PathSeries::*v) {
      f.push_back({header(name), [name, v](std::string& out, const S& s) {
                     if (const double x = ((*s).*v).get(); !std::isnan(x))
                       append_line(out, name, s->labels, x);
                   }});
    };
    const auto counter = [&](const char* name, const Count PathSeries::*c) {
      f.push_back({header(name), [name, c](std::string& out, const S& s) {
                     append_line(out, name, s->labels, ((*s).*c).get());
                   }});
    };
    f.push_back({header("siteprobe_path_test_runs_total"), [](std::string& out, const S& s) {
                   for (int v = 0; v < kVerdicts; ++v)
                     append_line(out, "siteprobe_path_test_runs_total",
                                 s->labels + ",result=\"" +
                                     verdict_name(static_cast<PathTestSummary::Verdict>(v)) + "\"",
                                 s->runs[v].get());
                 }});
    counter("siteprobe_path_test_packets_sent_total", &PathSeries::sent);
    counter("siteprobe_path_test_packets_received_total", &PathSeries::received);
    counter("siteprobe_path_test_duplicate_packets_total", &PathSeries::duplicates);
    counter("siteprobe_path_test_reordered_packets_total", &PathSeries::reordered);
    // One series per direction the last test measured (none where it could not tell).
    using Dirs = std::vector<std::pair<const char*, const Value PathSeries::*>>;
    const auto by_direction = [&](const char* name, Dirs dirs) {
      f.push_back({header(name), [name, dirs = std::move(dirs)](std::string& out, const S& s) {
                     for (const auto& [dir, v] : dirs)
                       if (const double x = ((*s).*v).get(); !std::isnan(x))
                         append_line(out, name, s->labels + ",direction=\"" + dir + "\"", x);
                   }});
    };
    by_direction("siteprobe_path_test_loss_ratio", {{"round_trip", &PathSeries::loss},
                                                    {"forward", &PathSeries::loss_forward},
                                                    {"reverse", &PathSeries::loss_reverse}});
    by_direction("siteprobe_path_test_ipdv_seconds", {{"round_trip", &PathSeries::ipdv},
                                                      {"forward", &PathSeries::ipdv_forward},
                                                      {"reverse", &PathSeries::ipdv_reverse}});
    by_direction("siteprobe_path_test_dscp_unchanged",
                 {{"forward", &PathSeries::dscp_forward}, {"reverse", &PathSeries::dscp_reverse}});
    gauge("siteprobe_path_test_r_factor", &PathSeries::r);
    gauge("siteprobe_path_test_mos", &PathSeries::mos);
    gauge("siteprobe_path_test_rate_bytes_per_second", &PathSeries::bitrate);
    gauge("siteprobe_path_test_last_run_timestamp_seconds", &PathSeries::last_run);
    gauge("siteprobe_path_test_ok", &PathSeries::ok);
    f.push_back({header("siteprobe_path_test_rtt_seconds"), [](std::string& out, const S& s) {
                   std::uint64_t cum = 0;
                   for (std::size_t i = 0; i <= s->rtt.bounds.size(); ++i) {
                     cum += s->rtt.buckets[i].get();
                     append_line(out, "siteprobe_path_test_rtt_seconds_bucket",
                                 s->labels + "," + (i < s->rtt.bounds.size() ? s->rtt.le[i] : "le=\"+Inf\""),
                                 cum);
                   }
                   append_line(out, "siteprobe_path_test_rtt_seconds_sum", s->labels, s->rtt.sum.get());
                   append_line(out, "siteprobe_path_test_rtt_seconds_count", s->labels, cum);
                 }});
    auto rest = family_parts(series.snapshot(), std::move(f));
    return [globals, rest = std::move(rest), first = true](std::string& out) mutable {
      if (first) {
        first = false;
        out += *globals;
        return true;
      }
      return rest(out);
    };
  }
};

class StampProber final : public Prober {
 public:
  StampProber(uv_loop_t* loop, PathTestFn on_result,
              std::function<void(const std::string&, const std::string&, const std::string&)> log)
      : loop_(loop), on_result_(std::move(on_result)), log_(std::move(log)) {
    uv_must(timer_.init([&](uv_timer_t* t) { return uv_timer_init(loop_, t); }), "uv_timer_init");
    timer_.get()->data = this;
  }
  ~StampProber() override { close(); }

  std::shared_ptr<const Exposition> exposition() const override { return expo_; }

  void set_targets(const Config& config, const std::vector<Target>& targets) override {
    max_bps_ = config.path_test_max_bps;
    per_subtree_ = config.path_test_streams_per_subtree;
    std::unordered_map<std::string, Site const*> sites;
    for (const auto& s : config.sites) sites[s.id] = &s;
    std::unordered_map<std::string, Entry> next;
    for (const auto& t : targets) {
      const auto b = t.device->blocks.find("stamp");
      if (b == t.device->blocks.end()) continue;
      Entry e;
      if (auto old = entries_.find(t.key); old != entries_.end()) {
        e = std::move(old->second);
        if (e.series && e.labels->text != t.labels->text) {
          expo_->series.remove(e.series);
          e.series.reset();
        }
      }
      e.labels = t.labels;
      e.block = b->second;
      if (t.address.ss_family != AF_UNSPEC) e.address = t.address;
      // The subtree whose uplink the stream crosses: the site's district (level 1), else itself.
      const std::string site = t.key.substr(0, t.key.find('/'));
      e.group = site;
      if (auto s = sites.find(site);
          s != sites.end() && s->second->chain.size() > 1 && !s->second->chain[1].empty())
        e.group = s->second->chain[1];
      next.emplace(t.key, std::move(e));
    }
    for (auto& [k, e] : entries_)
      if (!next.count(k) && e.series) expo_->series.remove(e.series);
    entries_ = std::move(next);
  }
  void set_address(const std::string& key, const sockaddr_storage& addr) override {
    if (auto e = entries_.find(key); e != entries_.end()) e->second.address = addr;
  }
  void close() override {
    running_.clear();  // no callbacks after this
    queue_.clear();
    timer_.reset();
  }

  void request(const std::vector<std::string>& keys, const std::string& why, double bitrate_bps) {
    for (const auto& k : keys) {
      auto e = entries_.find(k);
      if (e == entries_.end()) {
        PathTestSummary p;
        p.reason = "no path test configured (no stamp block)";
        report(k, p);
        continue;
      }
      if (running_.count(k) ||
          std::any_of(queue_.begin(), queue_.end(), [&](const auto& q) { return q.first == k; }))
        continue;
      queue_.emplace_back(k, bitrate_bps);
      if (log_) log_("path test queued", "device", k + " (" + why + ")");
    }
    pump();
  }

 private:
  struct Entry {
    std::shared_ptr<const DeviceLabels> labels;  // the series are made at a device's first path test
    BlockSettings block;
    sockaddr_storage address{};
    std::string group;
    std::shared_ptr<PathSeries> series;
  };
  struct Running {
    std::unique_ptr<StampStream> stream;
    std::string group;
    double bps = 0;
  };

  void pump() {
    const auto now = static_cast<std::int64_t>(uv_hrtime());
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (now - last_start_ < kStagger) break;
      const std::string key = it->first;
      auto e = entries_.find(key);
      if (e == entries_.end()) {
        it = queue_.erase(it);
        continue;
      }
      StreamSpec spec;
      std::string err = stream_spec(e->second.block, e->second.address, spec);
      if (it->second > 0) spec.bitrate_bps = it->second;
      if (err.empty() && spec.bitrate_bps > max_bps_)
        err = "bitrate " + rate(spec.bitrate_bps) + " is above global.path_test_max_kbps (" + rate(max_bps_) +
              ")";
      if (!err.empty()) {
        it = queue_.erase(it);
        PathTestSummary p;
        p.reason = "path test not run: " + err;
        report(key, p);
        continue;
      }
      double bps = 0;
      int in_group = 0;
      for (const auto& [k, r] : running_) bps += r.bps, in_group += r.group == e->second.group;
      if (bps + spec.bitrate_bps > max_bps_ || in_group >= per_subtree_) {
        ++it;  // waits for a running stream to end; others may go
        continue;
      }
      spec.ssid = static_cast<std::uint16_t>(++ssid_ == 0 ? ++ssid_ : ssid_);
      auto stream = std::make_unique<StampStream>(
          loop_, spec, [this, key](const PathTestSummary& p, const StreamStats& st) { done(key, p, st); });
      if (err = stream->start(); !err.empty()) {
        it = queue_.erase(it);
        PathTestSummary p;
        p.reason = "path test not run: " + err;
        report(key, p);
        continue;
      }
      running_[key] = {std::move(stream), e->second.group, spec.bitrate_bps};
      last_start_ = now;
      it = queue_.erase(it);
    }
    expo_->running.set(static_cast<double>(running_.size()));
    expo_->queued.set(static_cast<double>(queue_.size()));
    if (queue_.empty())
      uv_timer_stop(timer_.get());
    else if (!uv_is_active(reinterpret_cast<uv_handle_t*>(timer_.get())))
      uv_must(uv_timer_start(
                  timer_.get(),
                  [](uv_timer_t* t) noexcept {
                    try {
                      static_cast<StampProber*>(t->data)->pump();
                    } catch (...) {  // out of memory: the queue waits for the next tick
                    }
                  },
                  100, 100),
              "uv_timer_start");
  }

  void done(const std::string& key, const PathTestSummary& p, const StreamStats& st) {
    expo_->invalid.inc(st.invalid_count());
    expo_->skipped.inc(st.skipped_count());
    if (auto e = entries_.find(key); e != entries_.end()) {
      auto& s = series(e->second);
      s.sent.inc(p.sent);
      s.received.inc(p.received);
      s.duplicates.inc(st.duplicates());
      s.reordered.inc(st.reordered());
      for (const double r : st.rtts()) s.rtt.observe(r);
    }
    report(key, p);
    // Last: this destroys the stream that is calling us (StampStream::finish does nothing after).
    running_.erase(key);
    pump();
  }

  PathSeries& series(Entry& e) {
    if (!e.series) {
      e.series = std::make_shared<PathSeries>(e.labels);
      expo_->series.add(e.series);
    }
    return *e.series;
  }

  void report(const std::string& key, const PathTestSummary& p) {
    if (auto e = entries_.find(key); e != entries_.end()) {
      auto& s = series(e->second);
      s.runs[static_cast<int>(p.verdict)].inc();
      s.loss.set(p.verdict == PathTestSummary::Verdict::Failed ||
                         p.verdict == PathTestSummary::Verdict::NoReflector
                     ? std::nan("")
                     : p.loss_ratio);
      s.loss_forward.set(p.loss_forward < 0 ? std::nan("") : p.loss_forward);
      s.loss_reverse.set(p.loss_reverse < 0 ? std::nan("") : p.loss_reverse);
      const double none = std::nan("");
      s.ipdv.set(p.received > 1 ? p.ipdv_seconds : none);
      s.ipdv_forward.set(p.received > 1 ? p.ipdv_forward_seconds : none);
      s.ipdv_reverse.set(p.received > 1 ? p.ipdv_reverse_seconds : none);
      s.r.set(p.received ? p.r_factor : std::nan(""));
      s.mos.set(p.received ? p.mos : std::nan(""));
      s.dscp_forward.set(p.dscp_forward < 0 ? std::nan("") : p.dscp_forward);
      s.dscp_reverse.set(p.dscp_reverse < 0 ? std::nan("") : p.dscp_reverse);
      s.bitrate.set(p.bitrate_bps / 8);
      s.last_run.set(static_cast<double>(realtime().tv_sec));
      s.ok.set(p.verdict == PathTestSummary::Verdict::Ok ? 1 : 0);
    }
    if (log_)
      log_("path test done", "device",
           key + " result=" + verdict_name(p.verdict) +
               (p.reason.empty() ? "" : " reason=\"" + p.reason + "\""));
    if (on_result_) on_result_(key, p);
  }

  static constexpr std::int64_t kStagger = 1000 * kMs;
  uv_loop_t* loop_;
  PathTestFn on_result_;
  std::function<void(const std::string&, const std::string&, const std::string&)> log_;
  std::shared_ptr<PathExposition> expo_ = std::make_shared<PathExposition>();
  std::unordered_map<std::string, Entry> entries_;
  std::deque<std::pair<std::string, double>> queue_;  // device key, bitrate (0: its own)
  std::map<std::string, Running> running_;
  UvHandle<uv_timer_t> timer_;
  double max_bps_ = 20e6;
  int per_subtree_ = 1;
  std::int64_t last_start_ = -kStagger;
  std::uint16_t ssid_ = static_cast<std::uint16_t>(std::random_device{}());
};

}  // namespace

std::unique_ptr<Prober> make_stamp_prober(ProbeContext& ctx) {
  auto p = std::make_unique<StampProber>(ctx.loop, ctx.on_path_test, ctx.log_info);
  ctx.request_path_tests = [raw = p.get()](const std::vector<std::string>& keys, const std::string& why,
                                           double bitrate_bps) { raw->request(keys, why, bitrate_bps); };
  return p;
}

}  // namespace siteprobe::probes

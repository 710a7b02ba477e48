// The SNMP prober: devices, their sessions and the libuv glue (probes/snmp.h). What a poll asks
// and how it proceeds is SnmpRequest (snmp_request.h), when it runs SnmpSchedule (snmp_schedule.h).
#include "probes/snmp.h"

#include "probes/snmp_request.h"  // first: net-snmp's config header
// clang-format off: needs net-snmp's headers first
#include <net-snmp/library/large_fd_set.h>
// clang-format on

#include <arpa/inet.h>
#include <malloc.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "probes/scheduler.h"
#include "probes/snmp_exposition.h"
#include "probes/snmp_mib.h"
#include "probes/snmp_schedule.h"
#include "util/net.h"

namespace siteprobe::probes {
// (Re)creates the USM user of a session from its Ku and engine ID. net-snmp keeps one global user per
// (engine ID, name) and would otherwise keep using the keys of whichever profile created it first.
bool make_user(netsnmp_session* ss) {
  if (usmUser* u = usm_get_user(ss->securityEngineID, ss->securityEngineIDLen, ss->securityName)) {
    usm_remove_user(u);
    usm_free_user(u);
  }
  ss->flags &= ~static_cast<unsigned long>(SNMP_FLAGS_USER_CREATED);  // else creating is a no-op
  return create_user_from_session(ss) == SNMPERR_SUCCESS;
}

namespace {

struct KeySet {
  std::vector<u_char> auth_ku, priv_ku;
};

}  // namespace

void init_net_snmp() {
  static bool done = false;
  if (done) return;
  done = true;
  // net-snmp mallocs and frees a 64 KB receive buffer for every datagram it reads; freeing a chunk
  // that large from the heap makes glibc consolidate its fastbins and trim the heap every time (a
  // quarter of the poller's CPU in perf). Served by mmap instead, it costs two cheap syscalls.
  mallopt(M_MMAP_THRESHOLD, 32 << 10);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_LOAD_HOST_FILES, 1);
  netsnmp_ds_set_int(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIB_WARNINGS, 0);
  // net-snmp keeps a persistent directory (certificate indexes) that init_snmp creates, printing
  // "Created directory: /var/lib/snmp/..." on stderr. Made here, silently: under the service's
  // state directory (systemd StateDirectory=), else a private one in /tmp.
  static std::string dir;
  if (const char* s = std::getenv("STATE_DIRECTORY"); s && *s)
    dir = std::string(s, std::strcspn(s, ":")) + "/net-snmp";
  else
    dir = "/tmp/siteprobe-net-snmp-" + std::to_string(geteuid());
  struct stat st {};
  const bool ours = (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) && lstat(dir.c_str(), &st) == 0 &&
                    S_ISDIR(st.st_mode) && st.st_uid == geteuid();
  if (ours && (mkdir((dir + "/cert_indexes").c_str(), 0700) == 0 || errno == EEXIST))
    netsnmp_ds_set_string(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_PERSISTENT_DIR, dir.c_str());
  // Fails only without memory for the environment: then net-snmp loads MIB files it does not need.
  (void)setenv("MIBS", "", 0);  // numeric OIDs only: load no MIB files
  snmp_disable_log();
  // Otherwise net-snmp writes some messages ("Authentication failed for ...") to stderr, outside
  // siteprobe's logfmt: failures are counted by kind instead.
  netsnmp_register_loghandler(NETSNMP_LOGHANDLER_NONE, LOG_DEBUG);
  init_snmp("siteprobe");
}

std::vector<u_char> passphrase_ku(const std::string& auth_protocol, const std::string& pass) {
  std::size_t plen = 0;
  const oid* proto = auth_proto(auth_protocol, plen);
  std::vector<u_char> out(USM_AUTH_KU_LEN);
  std::size_t len = out.size();
  if (generate_Ku(proto, static_cast<u_int>(plen), reinterpret_cast<const u_char*>(pass.data()), pass.size(),
                  out.data(), &len) != SNMPERR_SUCCESS)
    len = 0;
  out.resize(len);
  return out;
}

const oid* auth_proto(const std::string& p, std::size_t& len) {
  len = USM_AUTH_PROTO_SHA_LEN;
  if (p == "MD5") return usmHMACMD5AuthProtocol;
  if (p == "SHA-224") return usmHMAC128SHA224AuthProtocol;
  if (p == "SHA-256") return usmHMAC192SHA256AuthProtocol;
  if (p == "SHA-384") return usmHMAC256SHA384AuthProtocol;
  if (p == "SHA-512") return usmHMAC384SHA512AuthProtocol;
  return usmHMACSHA1AuthProtocol;
}

const oid* priv_proto(const std::string& p, std::size_t& len) {
  len = USM_PRIV_PROTO_AES_LEN;
  if (p == "DES") return usmDESPrivProtocol;
  if (p == "AES-192") return len = 9, usmAES192PrivProtocol;
  if (p == "AES-256") return len = 9, usmAES256PrivProtocol;
  return usmAESPrivProtocol;
}

namespace {

// Gives the session the agent's engine ID (discovered on it) and makes its USM user again.
bool rekey(netsnmp_session* ss, const std::string& engine) {
  SNMP_FREE(ss->securityEngineID);
  SNMP_FREE(ss->contextEngineID);
  ss->securityEngineIDLen = ss->contextEngineIDLen = 0;
  ss->securityEngineID = static_cast<u_char*>(netsnmp_memdup(engine.data(), engine.size()));
  ss->contextEngineID = static_cast<u_char*>(netsnmp_memdup(engine.data(), engine.size()));
  if (!ss->securityEngineID || !ss->contextEngineID) return false;
  ss->securityEngineIDLen = ss->contextEngineIDLen = engine.size();
  return make_user(ss);
}

std::int64_t now_ns() {
  return static_cast<std::int64_t>(uv_hrtime());
}

class SnmpProber final : public Prober {
 public:
  // Polls start on a 100 ms grain: those due within it start together, and their replies are read
  // in the same wake-ups (at 30 polls/s, a wake-up per 3 polls instead of 2 per poll).
  static constexpr std::int64_t kPollGrainNs = 100'000'000;

  SnmpProber(uv_loop_t* loop, SnmpFn on_result)
      : loop_(loop),
        on_result_(std::move(on_result)),
        x_(std::make_shared<SnmpExposition>()),
        sched_timer_(loop, sched_engine_, kPollGrainNs),
        io_timer_(loop, io_engine_) {
    init_net_snmp();
  }

  std::shared_ptr<const Exposition> exposition() const override { return x_; }

  void set_targets(const Config& config, const std::vector<Target>& targets) override;
  void set_address(const std::string& key, const sockaddr_storage& addr) override {
    auto it = devs_.find(key);
    if (it == devs_.end()) return;
    if (std::memcmp(&it->second->addr, &addr, sizeof addr) != 0) forget_session(*it->second);
    it->second->addr = addr;
  }
  void probe_now(const std::string& key) override {
    sched_.poll_now(key);
    kick_ = true;
    sched_timer_.arm();
  }
  void close() override {
    if (closed_) return;
    closed_ = true;
    std::vector<Poll*> polls;
    for (auto& [k, d] : devs_) {
      drop_kept(*d);
      if (d->poll) polls.push_back(d->poll);
    }
    for (auto* p : polls) finish(p, true);
    sched_timer_.close();
    io_timer_.close();
  }

 private:
  struct Poll;
  // A device's session kept from one poll to the next: its socket, and the libuv watcher on it
  // (left running: see on_readable). A poll that succeeded leaves its session to the device's next
  // poll, so a device polled often costs no socket, bind and net-snmp session set-up each time
  // (21 % of the CPU per poll at 100 polls/s). A failed poll closes its session: the next one
  // starts clean, and a v3 session is kept only once it was opened with the agent's engine ID. At
  // most 1024 are kept, and no more than a quarter of the file descriptor limit (one each, besides
  // the polls in flight); a reload drops them all.
  struct Kept {
    SnmpSession sess;
    uv_poll_t* io = nullptr;
  };
  static std::size_t max_kept() {
    rlimit r{};
    if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 1024;
    return std::min<std::size_t>(1024, r.rlim_cur / 4);
  }
  struct Dev {
    Target target;
    std::string labels;  // rendered
    SnmpSettings settings;
    const AuthProfile* auth = nullptr;
    SnmpDeviceState::Settings state_settings;
    sockaddr_storage addr{};
    Poll* poll = nullptr;
    std::unique_ptr<Kept> kept;
    std::string usm_key;  // v3: user@address:port (see SnmpSchedule::set)
    SnmpAgent agent;
    SnmpDeviceState state;
  };
  struct Poll {
    Poll(SnmpProber& s, Dev& d, std::int64_t now)
        : self(s),
          dev(d),
          started_ns(now),
          req(d.auth->version, d.settings.max_interfaces, d.agent, d.state,
              now + d.settings.interval.count() * 9 / 10) {}
    // Closing the session calls back for its pending requests, with this Poll as magic: it is
    // closed first, while req (whose reqid no longer matches) is still there.
    ~Poll() { sess.reset(); }
    Poll(const Poll&) = delete;
    Poll& operator=(const Poll&) = delete;
    SnmpProber& self;
    Dev& dev;
    std::int64_t started_ns, wake = 0;  // wake: uv_hrtime of the next check, 0: none
    SnmpRequest req;
    SnmpSession sess;  // the device's kept session, or one opened for this poll
    uv_poll_t* io = nullptr;
    bool keepable = false;  // opened as the device's next polls need it (v3: with the engine ID)
  };
  // EngineTimer engines: the poll schedule, and the wake-ups (retransmissions, timeouts, deadlines)
  // of the polls in flight.
  struct SchedEngine {
    SnmpProber& p;
    std::optional<std::int64_t> next_due() const { return p.kick_ ? 0 : p.sched_.next_due(); }
    void run(std::int64_t now) { p.run_due(now); }
  };
  struct IoEngine {
    SnmpProber& p;
    std::optional<std::int64_t> next_due() const {
      if (p.wake_.empty()) return std::nullopt;
      return p.wake_.begin()->first;
    }
    void run(std::int64_t now) { p.on_wake(now); }
  };

  void retire(Dev& d) {
    drop_kept(d);
    if (d.poll) finish(d.poll, true);
    sched_.remove(d.target.key);
    x_->drop(d.target.key);
  }
  void show_load() { x_->set_load(sched_.in_flight(), sched_.waiting(), kept_); }
  // Closes a kept session once libuv has let go of its socket.
  void drop_kept(Dev& d) {
    if (!d.kept) return;
    --kept_;
    show_load();
    Kept* k = d.kept.release();
    k->io->data = k;
    uv_close(reinterpret_cast<uv_handle_t*>(k->io), [](uv_handle_t* h) noexcept {
      delete static_cast<Kept*>(h->data);      // NOLINT(cppcoreguidelines-owning-memory): from finish()
      delete reinterpret_cast<uv_poll_t*>(h);  // NOLINT(cppcoreguidelines-owning-memory): from open_session()
    });
  }
  // The device's settings or address changed: neither its kept session nor the one of a poll in
  // flight may serve its next poll.
  void forget_session(Dev& d) {
    drop_kept(d);
    if (d.poll) d.poll->keepable = false;
  }
  static void on_readable(uv_poll_t* h, int, int) noexcept {
    if (auto* poll = static_cast<Poll*>(h->data)) return poll->self.read(poll);
    // A kept session between polls (its watcher keeps running: stopping and starting it cost three
    // epoll_ctl calls per poll): a late answer to a finished poll. Dropped unread.
    uv_os_fd_t fd = -1;
    char b = 0;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(h), &fd) == 0)
      while (::recv(fd, &b, 1, MSG_DONTWAIT) >= 0) {
      }
  }
  void run_due(std::int64_t now);
  void start(Dev& d, std::int64_t now);
  bool open_session(Poll* p);
  void send(Poll* p);
  void after_io(Poll* p);
  void on_wake(std::int64_t now);
  void finish(Poll* p, bool aborted);
  void publish(Dev& d) {
    x_->render(d.target.key, [&](SnmpText& t) { d.state.render(d.labels, t); });
  }
  // Reads the datagram waiting on the poll's socket and acts on it.
  void read(Poll* p) {
    netsnmp_large_fd_set fds;
    netsnmp_large_fd_set_init(&fds, FD_SETSIZE);
    netsnmp_large_fd_setfd(p->sess.transport()->sock, &fds);
    // -1: a datagram net-snmp could not use (garbage, truncated, wrong version or community).
    const int rc = snmp_sess_read2(p->sess.get(), &fds);
    netsnmp_large_fd_set_cleanup(&fds);
    if (rc != 0) p->dev.state.count_error("decode");
    after_io(p);
  }
  // Whether a datagram is waiting (never blocks). Checked before a timeout or the deadline is acted
  // on: libuv runs timers before I/O, so after a stall an answer already here would lose to them.
  static bool readable(Poll* p) {
    pollfd pfd{p->sess.transport()->sock, POLLIN, 0};
    return ::poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
  }
  static int on_response(int op, netsnmp_session*, int reqid, netsnmp_pdu* pdu, void* magic) noexcept {
    auto* p = static_cast<Poll*>(magic);
    if (reqid != p->req.reqid) return 1;
    p->req.on_callback(op, pdu);
    if (p->req.take_rekey() && !rekey(p->sess.session(), p->dev.agent.engine_id)) p->req.fail("auth");
    return 1;
  }

  uv_loop_t* loop_;
  SnmpFn on_result_;
  std::shared_ptr<SnmpExposition> x_;
  std::unordered_map<std::string, std::unique_ptr<Dev>> devs_;
  SnmpSchedule sched_;
  std::set<std::pair<std::int64_t, Poll*>> wake_;
  SnmpRowPool rows_;
  std::map<std::string, KeySet> keys_;  // by auth profile name
  std::size_t kept_ = 0;                // sessions kept between polls (Dev::kept)
  const std::size_t max_kept_ = max_kept();
  bool closed_ = false, in_run_due_ = false;
  bool kick_ = false;  // run the schedule at once: set_targets may have freed places in flight
  SchedEngine sched_engine_{*this};
  IoEngine io_engine_{*this};
  EngineTimer<SchedEngine> sched_timer_;
  EngineTimer<IoEngine> io_timer_;
};

void SnmpProber::set_targets(const Config& config, const std::vector<Target>& targets) {
  sched_.set_max_inflight(config.snmp_max_inflight);
  std::map<std::string, std::pair<std::string, std::string>> custom;
  for (const auto& [name, objs] : config.snmp_modules)
    for (const auto& o : objs)
      custom["siteprobe_snmp_" + o.name] = {
          o.type == "counter" ? "counter" : "gauge",
          o.help.empty() ? "Custom SNMP object " + dotted(o.oid) + "." : o.help};
  x_->set_custom(std::move(custom));
  // Localized keys are derived per poll from Ku; Ku (a 1 MB hash of the passphrase) once per profile.
  keys_.clear();
  for (const auto& [name, a] : config.auth) {
    if (a.version != "3" || a.security_level == "noAuthNoPriv") continue;
    KeySet k;
    k.auth_ku = passphrase_ku(a.auth_protocol, a.auth_passphrase);
    if (a.security_level == "authPriv") k.priv_ku = passphrase_ku(a.auth_protocol, a.priv_passphrase);
    keys_[name] = std::move(k);
  }

  const std::int64_t now = now_ns();
  std::unordered_map<std::string, std::unique_ptr<Dev>> next;
  for (const auto& t : targets) {
    if (!t.device || !t.device->snmp) continue;
    std::unique_ptr<Dev> d;
    const std::string& labels = t.labels->text;
    if (auto it = devs_.find(t.key); it != devs_.end() && it->second->labels == labels) {
      d = std::move(it->second);
      devs_.erase(it);
    } else {
      if (it != devs_.end()) {  // new labels: a new device under the old key
        retire(*it->second);
        devs_.erase(it);
      }
      d = std::make_unique<Dev>();
      d->labels = labels;
    }
    forget_session(*d);  // opened with the old settings
    const bool auth_changed =
        !d->auth || d->auth->name != t.device->snmp->auth || d->settings.port != t.device->snmp->port;
    d->target = t;
    d->settings = *t.device->snmp;
    d->auth = &config.auth.at(d->settings.auth);
    if (auth_changed) d->agent.engine_id.clear();
    d->usm_key = d->auth->version == "3"
                     ? d->auth->username + "@" + t.device->address + ":" + std::to_string(d->settings.port)
                     : "";
    if (d->agent.max_rep == 0 || d->agent.max_rep > d->settings.max_repetitions)
      d->agent.max_rep = d->settings.max_repetitions;
    d->state_settings = {d->settings.interfaces_include, d->settings.interfaces_exclude, d->settings.uplink};
    for (const auto& m : d->settings.modules)
      if (auto it = config.snmp_modules.find(m); it != config.snmp_modules.end())
        for (const auto& o : it->second) d->state_settings.custom.push_back(&o);
    sched_.set(t.key, d->settings.interval.count(), now, d->usm_key);
    publish(*d);
    next[t.key] = std::move(d);
  }
  // Devices that left: abort their polls, drop their series.
  for (auto& [key, d] : devs_) retire(*d);
  devs_ = std::move(next);
  // Not now: the daemon sets the addresses right after this call.
  kick_ = true;
  sched_timer_.arm();
}

void SnmpProber::run_due(std::int64_t now) {
  if (closed_ || in_run_due_) return;
  in_run_due_ = true;
  kick_ = false;
  // Still busy a whole interval later: cannot happen with a deadline.
  for (const auto& key : sched_.advance(now)) devs_.at(key)->state.failed("timeout");
  while (auto key = sched_.start_next()) start(*devs_.at(*key), now);
  show_load();
  in_run_due_ = false;
  sched_timer_.arm();
}

void SnmpProber::start(Dev& d, std::int64_t now) {
  // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): the device and libuv hold it until finish()
  auto* p = new Poll(*this, d, now);
  d.poll = p;
  if (d.addr.ss_family != AF_INET && d.addr.ss_family != AF_INET6) {
    p->req.fail("unresolved");
    return finish(p, false);
  }
  p->req.use_pool(&rows_);
  p->req.plan(d.settings.modules, d.state_settings.custom);
  if (!open_session(p) && p->req.next() != SnmpRequest::Next::Fail) p->req.fail("send");
  after_io(p);
}

// The session: the device's kept one, else a new socket; read when readable.
bool SnmpProber::open_session(Poll* p) {
  Dev& d = p->dev;
  if (d.kept) {
    --kept_;
    show_load();
    p->sess = std::move(d.kept->sess);
    p->io = d.kept->io;
    d.kept.reset();
    p->io->data = p;
    p->keepable = true;
    // Its watcher still runs, unless libuv stopped it on a socket error (an ICMP unreachable).
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(p->io)))
      uv_must(uv_poll_start(p->io, UV_READABLE, on_readable), "uv_poll_start");
    return true;
  }
  char host[INET6_ADDRSTRLEN] = "";
  const void* in = d.addr.ss_family == AF_INET
                       ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&d.addr)->sin_addr)
                       : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(&d.addr)->sin6_addr);
  if (!inet_ntop(d.addr.ss_family, in, host, sizeof host)) return false;
  const std::string peer = d.addr.ss_family == AF_INET
                               ? "udp:" + std::string(host) + ":" + std::to_string(d.settings.port)
                               : "udp6:[" + std::string(host) + "]:" + std::to_string(d.settings.port);
  netsnmp_session s;
  snmp_sess_init(&s);
  std::vector<char> peername(peer.begin(), peer.end());
  peername.push_back('\0');
  s.peername = peername.data();
  s.timeout =
      static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(d.settings.timeout).count());
  s.retries = d.settings.retries;
  s.flags |= SNMP_FLAGS_DONT_PROBE;
  const AuthProfile& a = *d.auth;
  std::vector<u_char> community(a.community.begin(), a.community.end());
  std::vector<char> user(a.username.begin(), a.username.end());
  user.push_back('\0');
  std::vector<u_char> engine(d.agent.engine_id.begin(), d.agent.engine_id.end());
  if (a.version != "3") {
    s.version = a.version == "1" ? SNMP_VERSION_1 : SNMP_VERSION_2c;
    s.community = community.data();
    s.community_len = community.size();
  } else {
    s.version = SNMP_VERSION_3;
    s.securityName = user.data();
    s.securityNameLen = a.username.size();
    s.securityModel = SNMP_SEC_MODEL_USM;
    s.securityLevel = a.security_level == "noAuthNoPriv" ? SNMP_SEC_LEVEL_NOAUTH
                      : a.security_level == "authNoPriv" ? SNMP_SEC_LEVEL_AUTHNOPRIV
                                                         : SNMP_SEC_LEVEL_AUTHPRIV;
    if (s.securityLevel != SNMP_SEC_LEVEL_NOAUTH) {
      const KeySet& k = keys_[a.name];
      std::size_t len = 0;
      s.securityAuthProto = const_cast<oid*>(auth_proto(a.auth_protocol, len));
      s.securityAuthProtoLen = len;
      std::memcpy(s.securityAuthKey, k.auth_ku.data(), k.auth_ku.size());
      s.securityAuthKeyLen = k.auth_ku.size();
      if (s.securityLevel == SNMP_SEC_LEVEL_AUTHPRIV) {
        s.securityPrivProto = const_cast<oid*>(priv_proto(a.priv_protocol, len));
        s.securityPrivProtoLen = len;
        std::memcpy(s.securityPrivKey, k.priv_ku.data(), k.priv_ku.size());
        s.securityPrivKeyLen = k.priv_ku.size();
      }
    }
    if (!engine.empty()) {
      s.securityEngineID = engine.data();
      s.securityEngineIDLen = engine.size();
      s.contextEngineID = engine.data();
      s.contextEngineIDLen = engine.size();
    }
  }
  if (!p->sess.open(&s)) return false;
  // snmp_sess_open drops the flag; without it the first v3 send runs net-snmp's engine ID probe
  // synchronously, blocking the loop for timeout * retries when the agent is silent.
  p->sess.session()->flags |= SNMP_FLAGS_DONT_PROBE;
  if (a.version == "3" && !d.agent.engine_id.empty() && !make_user(p->sess.session())) {
    p->req.fail("auth");
    return false;
  }
  netsnmp_transport* t = p->sess.transport();
  // Only the agent's datagrams reach the socket, which a kept session holds open for long: the
  // kernel drops any other source's (a stray or forged datagram is never parsed, nor counted
  // against the device). As with snmp_exporter, an agent must answer from the address polled.
  if (t) {
    sockaddr_storage agent = d.addr;
    net::set_port(agent, d.settings.port);
    const socklen_t len = agent.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
    (void)::connect(t->sock, reinterpret_cast<const sockaddr*>(&agent), len);  // unconnected on failure
  }
  p->io = new uv_poll_t{};  // NOLINT(cppcoreguidelines-owning-memory): freed in its close callback
  p->io->data = p;
  if (!t || uv_poll_init_socket(loop_, p->io, t->sock) != 0) {
    delete p->io;  // NOLINT(cppcoreguidelines-owning-memory)
    p->io = nullptr;
    return false;
  }
  uv_must(uv_poll_start(p->io, UV_READABLE, on_readable), "uv_poll_start");
  p->keepable = a.version != "3" || !d.agent.engine_id.empty();
  return true;
}

void SnmpProber::send(Poll* p) {
  netsnmp_pdu* pdu = p->req.make_pdu();
  const bool ok = pdu && snmp_sess_async_send(p->sess.get(), pdu, &SnmpProber::on_response, p);
  if (pdu && !ok) snmp_free_pdu(pdu);  // else net-snmp owns it
  p->req.on_sent(ok);
  after_io(p);
}

void SnmpProber::after_io(Poll* p) {
  switch (p->req.next()) {
    case SnmpRequest::Next::Send:
      return send(p);
    case SnmpRequest::Next::Done:
    case SnmpRequest::Next::Fail:
      return finish(p, false);
    case SnmpRequest::Next::Wait:
      break;
  }
  // Still waiting: when does net-snmp want to retransmit or give up, and when is the deadline?
  int numfds = 0, block = 1;
  timeval tv{};
  netsnmp_large_fd_set fds;
  netsnmp_large_fd_set_init(&fds, FD_SETSIZE);
  snmp_sess_select_info2_flags(p->sess.get(), &numfds, &fds, &tv, &block, NETSNMP_SELECT_NOALARMS);
  netsnmp_large_fd_set_cleanup(&fds);
  std::int64_t wake = p->req.deadline_ns();
  if (!block) wake = std::min<std::int64_t>(wake, now_ns() + tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL);
  if (p->wake) wake_.erase({p->wake, p});
  p->wake = wake;
  wake_.insert({wake, p});
  io_timer_.arm();
}

void SnmpProber::on_wake(std::int64_t now) {
  std::vector<Poll*> due;
  for (auto it = wake_.begin(); it != wake_.end() && it->first <= now; ++it) due.push_back(it->second);
  for (Poll* p : due) {
    wake_.erase({p->wake, p});
    p->wake = 0;
    if (p->io && readable(p)) {
      read(p);
      continue;
    }
    if (p->req.expired(now))
      p->req.fail("timeout");
    else
      snmp_sess_timeout(p->sess.get());
    after_io(p);
  }
}

void SnmpProber::finish(Poll* p, bool aborted) {
  Dev& d = p->dev;
  if (p->wake) wake_.erase({p->wake, p});
  p->req.reqid = -1;  // the session's pending requests call back once more when it closes
  d.poll = nullptr;
  sched_.finished(d.target.key);
  show_load();
  if (!aborted) {
    const SnmpRequest& r = p->req;
    const std::int64_t now = now_ns();
    const bool ok = r.next() == SnmpRequest::Next::Done;
    std::string kind;
    if (ok) {
      d.state.apply(r.data(), d.state_settings, static_cast<double>(now) / 1e9);
      if (needs_32bit_columns(r.data())) d.agent.need32 = true;
    } else {
      kind = r.fail_kind().empty() ? "timeout" : r.fail_kind();
      d.state.failed(kind);
      // A restarted agent may have a new engine ID or boot count: discover it again next time.
      d.agent.engine_id.clear();
    }
    d.state.count_pdus(r.sent(), r.received());
    p->req.recycle(rows_);
    d.state.poll_done(ok, static_cast<double>(now - p->started_ns) / 1e9, d.agent.max_rep);
    publish(d);
    if (on_result_) on_result_(d.target.key, {ok, kind, d.state.uplinks()});
  }
  const bool keep = !aborted && !closed_ && p->keepable && p->req.next() == SnmpRequest::Next::Done &&
                    !d.kept && kept_ < max_kept_;
  if (p->io && !keep) uv_must(uv_poll_stop(p->io), "uv_poll_stop");
  if (p->io && keep) {
    d.kept = std::make_unique<Kept>();
    d.kept->sess = std::move(p->sess);
    d.kept->io = p->io;
    d.kept->io->data = nullptr;
    ++kept_;
    show_load();
    delete p;  // NOLINT(cppcoreguidelines-owning-memory): see start()
  } else if (p->io) {
    // The session (and its socket) is closed only once libuv has let go of the fd.
    uv_close(reinterpret_cast<uv_handle_t*>(p->io), [](uv_handle_t* h) noexcept {
      delete static_cast<Poll*>(h->data);      // NOLINT(cppcoreguidelines-owning-memory): see start()
      delete reinterpret_cast<uv_poll_t*>(h);  // NOLINT(cppcoreguidelines-owning-memory): see start()
    });
  } else {
    delete p;  // NOLINT(cppcoreguidelines-owning-memory): see start()
  }
  if (!closed_ && !aborted) run_due(now_ns());
  io_timer_.arm();
}

}  // namespace

std::unique_ptr<Prober> make_snmp_prober(ProbeContext& ctx) {
  return std::make_unique<SnmpProber>(ctx.loop, ctx.on_snmp);
}

}  // namespace siteprobe::probes

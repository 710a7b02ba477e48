#include "probes/snmp_trap.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <unordered_map>

#include "probes/snmp_request.h"  // first: net-snmp's config header
#include "util/net.h"

namespace siteprobe::probes {
namespace {

const Oid kSnmpTrapOid = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
const Oid kStdTraps = {1, 3, 6, 1, 6, 3, 1, 1, 5};  // .1 coldStart ... .5 authenticationFailure
const Oid kIfIndex = {1, 3, 6, 1, 2, 1, 2, 2, 1, 1};

struct PduFree {
  void operator()(netsnmp_pdu* p) const noexcept { snmp_free_pdu(p); }
};
using Pdu = std::unique_ptr<netsnmp_pdu, PduFree>;

bool starts_with(const Oid& o, const Oid& prefix) {
  return o.size() > prefix.size() && std::equal(prefix.begin(), prefix.end(), o.begin());
}

void if_index(const netsnmp_pdu* pdu, TrapMessage& m) {
  for (auto* v = pdu->variables; v; v = v->next_variable)
    if (v->type == ASN_INTEGER && starts_with(to_oid(v->name, v->name_length), kIfIndex))
      m.if_index = *v->val.integer;
}

// A v2c or v3 Trap's (or InformRequest's) varbinds: snmpTrapOID.0 is required.
TrapMessage& trap2(const netsnmp_pdu* pdu, TrapMessage& m) {
  for (auto* v = pdu->variables; v; v = v->next_variable)
    if (v->type == ASN_OBJECT_ID && to_oid(v->name, v->name_length) == kSnmpTrapOid)
      m.trap_oid = to_oid(v->val.objid, v->val_len / sizeof(oid));
  if (m.trap_oid.empty()) m.error = "decode";
  if_index(pdu, m);
  return m;
}

}  // namespace

std::string snmp_encode(netsnmp_session* s, netsnmp_pdu* pdu) {
  init_net_snmp();
  netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_REVERSE_ENCODE, 1);
  if (pdu->version == SNMP_DEFAULT_VERSION) pdu->version = s->version;  // as snmp_sess_send does
  std::size_t size = 2048, used = 0;
  // net-snmp reallocs the buffer as it grows, so it must come from malloc.
  // NOLINTNEXTLINE(cppcoreguidelines-no-malloc,cppcoreguidelines-owning-memory)
  auto* buf = static_cast<u_char*>(std::malloc(size));
  std::string out;
  if (buf && snmp_build(&buf, &size, &used, s, pdu) == 0 && used <= size)
    out.assign(reinterpret_cast<const char*>(buf + size - used), used);
  std::free(buf);  // NOLINT(cppcoreguidelines-no-malloc,cppcoreguidelines-owning-memory)
  return out;
}

UsmKeys usm_keys(const AuthProfile& a) {
  UsmKeys k;
  k.user = a.username;
  k.auth_protocol = a.auth_protocol;
  k.priv_protocol = a.priv_protocol;
  k.level = a.security_level == "noAuthNoPriv" ? SNMP_SEC_LEVEL_NOAUTH
            : a.security_level == "authNoPriv" ? SNMP_SEC_LEVEL_AUTHNOPRIV
                                               : SNMP_SEC_LEVEL_AUTHPRIV;
  if (k.level != SNMP_SEC_LEVEL_NOAUTH) k.auth_ku = passphrase_ku(a.auth_protocol, a.auth_passphrase);
  if (k.level == SNMP_SEC_LEVEL_AUTHPRIV) k.priv_ku = passphrase_ku(a.auth_protocol, a.priv_passphrase);
  return k;
}

void set_trap_engine_id(std::vector<std::uint8_t> id) {
  init_net_snmp();
  if (id.empty()) {
    std::array<char, 256> host{};
    gethostname(host.data(), host.size() - 1);
    const std::string text = std::string("\x80\x00\x1f\x88\x04siteprobe@", 15) + host.data();
    id.assign(text.begin(),
              text.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(text.size(), 32)));
  }
  if (trap_engine_id() == std::string(id.begin(), id.end())) return;
  set_exact_engineID(id.data(), id.size());
  // The engine must be known to USM (as init_snmp does for the one it generated).
  set_enginetime(id.data(), static_cast<u_int>(id.size()), static_cast<u_int>(snmpv3_local_snmpEngineBoots()),
                 static_cast<u_int>(snmpv3_local_snmpEngineTime()), TRUE);
}

std::string trap_engine_id() {
  init_net_snmp();
  std::array<u_char, 64> id{};
  const std::size_t n = snmpv3_get_engineID(id.data(), id.size());
  return {reinterpret_cast<const char*>(id.data()), n};
}

namespace {

// A v3 message's msgAuthoritativeEngineID and msgUserName, read before any USM processing.
bool v3_header(std::vector<u_char> in, std::string& engine, std::string& user) {
  u_char type = 0, *p = in.data();
  std::size_t left = in.size();
  long version = 0;
  p = asn_parse_sequence(p, &left, &type, ASN_SEQUENCE | ASN_CONSTRUCTOR, "message");
  if (p) p = asn_parse_int(p, &left, &type, &version, sizeof version);
  std::size_t global = left;  // msgGlobalData: skipped
  u_char* body = p ? asn_parse_header(p, &global, &type) : nullptr;
  if (!body || static_cast<std::size_t>(body - p) + global > left) return false;
  left -= static_cast<std::size_t>(body - p) + global;
  std::array<u_char, 1024> sec{};
  std::size_t slen = sec.size();
  if (!asn_parse_string(body + global, &left, &type, sec.data(), &slen)) return false;
  std::array<u_char, 64> eid{}, name{};
  std::size_t elen = eid.size(), nlen = name.size();
  long boots = 0, time = 0;
  u_char* q = asn_parse_sequence(sec.data(), &slen, &type, ASN_SEQUENCE | ASN_CONSTRUCTOR, "usm");
  if (q) q = asn_parse_string(q, &slen, &type, eid.data(), &elen);
  if (q) q = asn_parse_int(q, &slen, &type, &boots, sizeof boots);
  if (q) q = asn_parse_int(q, &slen, &type, &time, sizeof time);
  if (q) q = asn_parse_string(q, &slen, &type, name.data(), &nlen);
  if (!q) return false;  // an empty engine ID: a discovery probe
  engine.assign(reinterpret_cast<const char*>(eid.data()), elen);
  user.assign(reinterpret_cast<const char*>(name.data()), nlen);
  return true;
}

// Runs `fn` on a USM session for `engine` with the keys of `k` (none: no user, as for engine
// discovery) while net-snmp's process-wide user list holds a user made for them. One made here is
// removed after it, so senders with ever new engine IDs cannot grow the list; one that was there
// (the poller's, for the same device and so the same keys) stays. `authoritative`: `engine` is
// the receiver's own (informs), and net-snmp checks the time window against its clock.
template <class Fn>
int with_usm(const std::string& engine, const UsmKeys* k, bool authoritative, Fn&& fn) {
  netsnmp_session s;
  snmp_sess_init(&s);
  s.version = SNMP_VERSION_3;
  s.securityModel = SNMP_SEC_MODEL_USM;
  if (authoritative) s.isAuthoritative = SNMP_SESS_AUTHORITATIVE;
  if (!k) return fn(s);
  std::vector<u_char> eid(engine.begin(), engine.end());
  std::vector<char> user(k->user.begin(), k->user.end());
  user.push_back('\0');
  s.securityName = user.data();
  s.securityNameLen = k->user.size();
  s.securityLevel = k->level;
  s.securityEngineID = eid.data();
  s.securityEngineIDLen = eid.size();
  std::size_t len = 0;
  if (k->level != SNMP_SEC_LEVEL_NOAUTH) {
    s.securityAuthProto = const_cast<oid*>(auth_proto(k->auth_protocol, len));
    s.securityAuthProtoLen = len;
    std::memcpy(s.securityAuthKey, k->auth_ku.data(), std::min(k->auth_ku.size(), sizeof s.securityAuthKey));
    s.securityAuthKeyLen = k->auth_ku.size();
  }
  if (k->level == SNMP_SEC_LEVEL_AUTHPRIV) {
    s.securityPrivProto = const_cast<oid*>(priv_proto(k->priv_protocol, len));
    s.securityPrivProtoLen = len;
    std::memcpy(s.securityPrivKey, k->priv_ku.data(), std::min(k->priv_ku.size(), sizeof s.securityPrivKey));
    s.securityPrivKeyLen = k->priv_ku.size();
  }
  const bool had = usm_get_user(eid.data(), eid.size(), user.data()) != nullptr;
  if (!make_user(&s)) return SNMPERR_GENERR;
  const int rc = fn(s);
  if (usmUser* u = had ? nullptr : usm_get_user(eid.data(), eid.size(), user.data())) {
    usm_remove_user(u);
    usm_free_user(u);
  }
  return rc;
}

// A v3 message: a Trap for the sender's engine; for the receiver's own engine an InformRequest
// (answered with a Response), or a Report for a sender that does not know the engine ID yet (a
// discovery probe: empty engine ID) or is outside its time window.
TrapMessage& decode_v3(std::vector<u_char>& in, const UsmLookup& usm, TrapMessage& m) {
  std::string engine, user;
  if (!v3_header(in, engine, user)) return m.error = "decode", m;
  const bool ours = engine.empty() || engine == trap_engine_id();
  const UsmKeys* k = engine.empty() ? nullptr : usm ? usm(user) : nullptr;
  if (!engine.empty() && (!k || k->level == SNMP_SEC_LEVEL_NOAUTH)) return m.error = "auth", m;
  Pdu pdu(snmp_pdu_create(0));
  if (!pdu) return m.error = "decode", m;
  m.version = "3";
  const int rc = with_usm(engine, k, ours, [&](netsnmp_session& s) {
    int r = snmp_parse(nullptr, &s, pdu.get(), in.data(), in.size());
    if (r != SNMPERR_SUCCESS && s.s_snmp_errno != 0) r = s.s_snmp_errno;
    const int cmd = pdu->command;
    if (ours && (r == SNMPERR_USM_UNKNOWNENGINEID || r == SNMPERR_USM_NOTINTIMEWINDOW) &&
        (SNMP_CMD_CONFIRMED(cmd) || (cmd == 0 && (pdu->flags & SNMP_MSG_FLAG_RPRT_BIT)))) {
      Pdu report(snmp_clone_pdu(pdu.get()));
      if (report && snmpv3_make_report(report.get(), r) == SNMPERR_SUCCESS)
        m.response = snmp_encode(&s, report.get());
      m.report = !m.response.empty();
      return m.report ? SNMPERR_SUCCESS : r;
    }
    if (r != SNMPERR_SUCCESS || !k || pdu->securityLevel < k->level) return SNMPERR_GENERR;
    if (ours && cmd == SNMP_MSG_INFORM) {
      Pdu resp(snmp_clone_pdu(pdu.get()));
      if (!resp) return SNMPERR_GENERR;
      resp->command = SNMP_MSG_RESPONSE;
      resp->errstat = resp->errindex = 0;
      m.response = snmp_encode(&s, resp.get());
      m.inform = true;
    }
    return SNMPERR_SUCCESS;
  });
  if (rc != SNMPERR_SUCCESS) return m.error = "auth", m;
  if (m.report) return m;
  if (pdu->command != SNMP_MSG_TRAP2 && pdu->command != SNMP_MSG_INFORM) return m.error = "unsupported", m;
  if (pdu->command == SNMP_MSG_INFORM && !m.inform) return m.error = "unsupported", m;  // not to us
  return trap2(pdu.get(), m);
}

}  // namespace

TrapMessage decode_trap(const std::uint8_t* data, std::size_t len, const UsmLookup& usm) {
  init_net_snmp();
  TrapMessage m;
  std::vector<u_char> in(data, data + len);  // net-snmp's parsers take non-const bytes
  std::array<u_char, 256> community{};
  std::size_t clen = community.size() - 1, left = len;
  long version = -1;
  u_char* rest =
      in.empty() ? nullptr : snmp_comstr_parse(in.data(), &left, community.data(), &clen, &version);
  if (version == SNMP_VERSION_3) return decode_v3(in, usm, m);
  if (!rest) {
    m.error = "decode";
    return m;
  }
  if (version != SNMP_VERSION_1 && version != SNMP_VERSION_2c) {
    m.error = "unsupported";
    return m;
  }
  Pdu pdu(snmp_pdu_create(0));
  if (!pdu) return m.error = "decode", m;
  pdu->version = version;
  if (snmp_pdu_parse(pdu.get(), rest, &left) != 0) return m.error = "decode", m;
  m.version = version == SNMP_VERSION_1 ? "1" : "2c";
  m.community.assign(reinterpret_cast<const char*>(community.data()), clen);
  const int cmd = pdu->command;
  if (version == SNMP_VERSION_1 && cmd == SNMP_MSG_TRAP) {
    if (pdu->trap_type < 0 || pdu->trap_type > 6) return m.error = "decode", m;
    if (pdu->trap_type < 6) {
      m.trap_oid = kStdTraps;
      m.trap_oid.push_back(static_cast<std::uint32_t>(pdu->trap_type + 1));
    } else {
      m.trap_oid = to_oid(pdu->enterprise, pdu->enterprise_length);
      m.trap_oid.push_back(0);
      m.trap_oid.push_back(static_cast<std::uint32_t>(pdu->specific_type));
    }
    char ip[INET_ADDRSTRLEN] = "";
    static const std::uint8_t kZero[4] = {0, 0, 0, 0};
    if (std::memcmp(pdu->agent_addr, kZero, 4) != 0 && inet_ntop(AF_INET, pdu->agent_addr, ip, sizeof ip))
      m.agent_addr = ip;
    if_index(pdu.get(), m);
  } else if (version == SNMP_VERSION_2c && (cmd == SNMP_MSG_TRAP2 || cmd == SNMP_MSG_INFORM)) {
    m.inform = cmd == SNMP_MSG_INFORM;
    if (!trap2(pdu.get(), m).error.empty()) return m;
  } else {
    return m.error = "unsupported", m;
  }
  if (m.inform) {
    Pdu r(snmp_clone_pdu(pdu.get()));
    if (!r) return m.error = "decode", m;
    r->command = SNMP_MSG_RESPONSE;
    r->errstat = r->errindex = 0;
    SNMP_FREE(r->community);
    r->community = static_cast<u_char*>(netsnmp_memdup(community.data(), clen ? clen : 1));
    r->community_len = clen;
    netsnmp_session s;
    snmp_sess_init(&s);
    s.version = version;
    s.community = community.data();
    s.community_len = clen;
    m.response = snmp_encode(&s, r.get());
  }
  return m;
}

std::string trap_kind(const Oid& oid, const std::vector<TrapVendor>& vendor, std::string& severity) {
  static const char* const kStd[] = {"cold_start", "warm_start", "link_down", "link_up",
                                     "authentication_failure"};
  if (oid.size() == kStdTraps.size() + 1 && starts_with(oid, kStdTraps) && oid.back() >= 1 &&
      oid.back() <= 5) {
    severity = oid.back() == 4 ? "info" : "warning";
    return kStd[oid.back() - 1];
  }
  for (const auto& v : vendor)
    if (Oid(v.oid.begin(), v.oid.end()) == oid) return severity = v.severity, v.kind;
  severity = "info";
  return "other";
}

const std::vector<std::string>& trap_drop_reasons() {
  static const std::vector<std::string> r = {"auth",         "community",      "decode",
                                             "rate_limited", "unknown_source", "unsupported"};
  return r;
}

namespace {

class TrapExposition final : public Exposition {
 public:
  TrapExposition() : dropped_(trap_drop_reasons().size()) {}
  // Off (no traps.listen): no series at all, so an unused receiver costs no series budget.
  void enable(bool on) { on_ = on; }
  Parts parts() const override {
    if (!on_) return slices(nullptr);
    std::shared_ptr<const std::pair<std::string, std::string>> t;
    {
      std::lock_guard<std::mutex> l(mu_);
      t = text_;
    }
    auto out = std::make_shared<std::string>();
    *out += header("siteprobe_snmp_last_trap_timestamp_seconds");
    if (t) *out += t->first;
    *out += header("siteprobe_snmp_traps_dropped_total");
    for (std::size_t i = 0; i < dropped_.size(); ++i)
      append_line(*out, "siteprobe_snmp_traps_dropped_total", "reason=\"" + trap_drop_reasons()[i] + "\"",
                  dropped_[i].get());
    *out += header("siteprobe_snmp_traps_total");
    if (t) *out += t->second;
    return slices(std::move(out));
  }
  void drop(const std::string& reason) {
    const auto& r = trap_drop_reasons();
    dropped_[static_cast<std::size_t>(std::find(r.begin(), r.end(), reason) - r.begin())].inc();
  }
  // The per-device lines: last trap timestamps, then counts by kind.
  void set(std::string last, std::string counts) {
    auto t = std::make_shared<const std::pair<std::string, std::string>>(std::move(last), std::move(counts));
    std::lock_guard<std::mutex> l(mu_);
    text_ = std::move(t);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const std::pair<std::string, std::string>> text_;
  std::vector<Count> dropped_;
  std::atomic<bool> on_{false};
};

class TrapReceiver final : public Prober {
 public:
  explicit TrapReceiver(ProbeContext& ctx)
      : loop_(ctx.loop),
        probe_now_(ctx.probe_now),
        on_trap_(ctx.on_trap),
        log_info_(ctx.log_info),
        x_(std::make_shared<TrapExposition>()) {
    init_net_snmp();
  }
  ~TrapReceiver() override { close(); }

  void set_targets(const Config& config, const std::vector<Target>& targets) override {
    settings_ = config.traps;
    x_->enable(!settings_.listen.empty());
    if (settings_.listen.empty()) {  // off: keep no devices (nor hash their v3 passphrases)
      devs_.clear();
      addr_.clear();
      if (!listen_.empty()) open();
      return;
    }
    set_trap_engine_id(settings_.engine_id);
    bucket_.rate = bucket_.burst = settings_.max_per_second;
    bucket_.tokens = std::min(bucket_.tokens, bucket_.burst);
    const auto per_source = [&](TokenBucket& b) {
      b.rate = b.burst = settings_.max_per_source;
      b.tokens = std::min(b.tokens, b.burst);
    };
    per_source(unknown_);
    std::unordered_map<std::string, Dev> next;
    std::map<std::string, std::shared_ptr<const UsmKeys>> usm;
    addr_.clear();
    for (const auto& t : targets) {
      if (!t.device || !t.device->snmp) continue;
      Dev d;
      const std::string& labels = t.labels->text;
      if (auto it = devs_.find(t.key); it != devs_.end() && it->second.labels == labels)
        d = std::move(it->second);
      d.labels = labels;
      d.site = t.site ? t.site->id : "";
      d.device = t.device->name;
      const AuthProfile& a = config.auth.at(t.device->snmp->auth);
      d.community = a.version == "3" ? "" : a.community;
      per_source(d.bucket);
      d.usm.reset();
      if (a.version == "3") {
        auto& k = usm[a.name];  // Ku once per profile and load
        if (!k) k = std::make_shared<const UsmKeys>(usm_keys(a));
        d.usm = k;
      }
      next[t.key] = std::move(d);
    }
    devs_ = std::move(next);
    for (const auto& [key, d] : devs_)
      if (!d.addr.empty()) addr_[d.addr] = key;
    publish();
    if (settings_.listen != listen_) open();
  }
  void set_address(const std::string& key, const sockaddr_storage& addr) override {
    auto it = devs_.find(key);
    if (it == devs_.end()) return;
    if (!it->second.addr.empty()) addr_.erase(it->second.addr);
    it->second.addr = net::ip_text(addr);
    if (!it->second.addr.empty()) addr_[it->second.addr] = key;
  }
  std::shared_ptr<const Exposition> exposition() const override { return x_; }
  void close() override { sock_.reset(); }

 private:
  struct Dev {
    std::string labels, site, device, community, addr;
    std::shared_ptr<const UsmKeys> usm;     // v3 profiles
    std::optional<std::int64_t> probed_ns;  // the last extra round asked for
    TokenBucket bucket{0, 0, 0, 0};         // datagrams from its address (max_per_source)
    double last_s = 0;
    std::map<std::string, std::uint64_t> counts;  // by kind
  };

  void open() {
    sock_.reset();
    listen_ = settings_.listen;
    if (listen_.empty()) return;
    const auto colon = listen_.rfind(':');
    std::string host = listen_.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    auto a = net::parse_ip(host);
    std::string err;
    if (!a) {
      err = "invalid address";
    } else {
      net::set_port(*a, std::stoi(listen_.substr(colon + 1)));
      int rc = sock_.init([this](uv_udp_t* h) { return uv_udp_init(loop_, h); });
      if (rc == 0) {
        sock_.get()->data = this;
        rc = uv_udp_bind(sock_.get(), reinterpret_cast<const sockaddr*>(&*a), 0);
      }
      if (rc == 0) rc = uv_udp_recv_start(sock_.get(), on_alloc, on_recv);
      if (rc != 0) err = uv_strerror(rc);
    }
    if (!err.empty()) {
      sock_.reset();
      listen_.clear();  // tried again on the next reload
      if (log_info_) log_info_("cannot listen for SNMP traps", "error", settings_.listen + ": " + err);
    } else if (log_info_) {
      // What devices that send SNMPv3 informs may be configured with (e.g. Cisco's
      // `snmp-server engineID remote`).
      static const char kHex[] = "0123456789abcdef";
      std::string hex = "0x";
      for (const unsigned char c : trap_engine_id()) (hex += kHex[c >> 4]) += kHex[c & 15];
      log_info_("listening for SNMP traps", "engine_id", hex);
    }
  }

  static void on_alloc(uv_handle_t* h, std::size_t, uv_buf_t* buf) noexcept {
    auto* self = static_cast<TrapReceiver*>(h->data);
    *buf = uv_buf_init(self->buf_.data(), static_cast<unsigned>(self->buf_.size()));
  }
  static void on_recv(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from, unsigned) noexcept {
    if (n <= 0 || !from) return;  // nothing more to read, or an error of one datagram (ICMP errors)
    auto* self = static_cast<TrapReceiver*>(h->data);
    sockaddr_storage src{};
    std::memcpy(&src, from, from->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
    self->on_datagram(reinterpret_cast<const std::uint8_t*>(buf->base), static_cast<std::size_t>(n), src);
  }

  void on_datagram(const std::uint8_t* data, std::size_t len, const sockaddr_storage& src) {
    const auto now = static_cast<std::int64_t>(uv_hrtime());
    const auto from = addr_.find(source_text(src));
    // One sender's flood (a device's, or from unknown and maybe forged addresses) leaves the
    // others their share; the global bucket bounds the decoding work of all of them.
    TokenBucket& mine = from == addr_.end() ? unknown_ : devs_.at(from->second).bucket;
    if (!mine.take(now) || !bucket_.take(now)) return x_->drop("rate_limited");
    TrapMessage m = decode_trap(data, len, [&](const std::string& user) -> const UsmKeys* {
      if (from == addr_.end()) return nullptr;
      const Dev& d = devs_.at(from->second);
      return d.usm && d.usm->user == user ? d.usm.get() : nullptr;
    });
    if (!m.error.empty())
      return x_->drop(m.error == "auth" && from == addr_.end() ? "unknown_source" : m.error);
    if (m.report) {  // v3 engine discovery or time synchronisation: answered to devices only
      if (from == addr_.end()) return x_->drop("unknown_source");
      return send(m.response, src);
    }
    auto it = m.agent_addr.empty() ? from : addr_.find(m.agent_addr);
    if (it == addr_.end()) return x_->drop("unknown_source");
    Dev& d = devs_.at(it->second);
    // Not a secret compared in constant time: a wrong guess only costs the sender a datagram.
    if (m.version != "3" && (d.community.empty() || m.community != d.community)) return x_->drop("community");
    if (m.inform && !m.response.empty()) send(m.response, src);
    std::string severity;
    const std::string kind = trap_kind(m.trap_oid, settings_.vendor, severity);
    ++d.counts[kind];
    d.last_s = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    publish();
    if (!d.probed_ns || now - *d.probed_ns >= settings_.debounce.count()) {
      d.probed_ns = now;
      if (probe_now_) probe_now_(it->second);
    }
    if (log_.take(now)) {
      if (on_trap_) on_trap_({d.site, d.device, kind, severity, m.version, m.if_index, suppressed_});
      suppressed_ = 0;
    } else {
      ++suppressed_;
    }
  }

  // Best effort: a full send buffer loses the Response (or Report), and the sender sends again.
  void send(std::string& bytes, const sockaddr_storage& to) {
    uv_buf_t b = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
    (void)uv_udp_try_send(sock_.get(), &b, 1, reinterpret_cast<const sockaddr*>(&to));
  }

  // The source as the inventory writes it: an IPv4-mapped IPv6 address as IPv4.
  static std::string source_text(const sockaddr_storage& src) {
    if (src.ss_family == AF_INET6) {
      const auto& a6 = reinterpret_cast<const sockaddr_in6&>(src);
      if (IN6_IS_ADDR_V4MAPPED(&a6.sin6_addr)) {
        char ip[INET_ADDRSTRLEN] = "";
        if (inet_ntop(AF_INET, &a6.sin6_addr.s6_addr[12], ip, sizeof ip)) return ip;
      }
    }
    return net::ip_text(src);
  }

  void publish() {
    std::string last, counts;
    for (const auto& [key, d] : devs_) {
      if (d.counts.empty()) continue;
      append_line(last, "siteprobe_snmp_last_trap_timestamp_seconds", d.labels, d.last_s);
      for (const auto& [kind, n] : d.counts)
        append_line(counts, "siteprobe_snmp_traps_total", d.labels + ",kind=\"" + kind + "\"", n);
    }
    x_->set(std::move(last), std::move(counts));
  }

  uv_loop_t* loop_;
  std::function<void(const std::string&)> probe_now_;
  std::function<void(const TrapEvent&)> on_trap_;
  std::function<void(const std::string&, const std::string&, const std::string&)> log_info_;
  std::shared_ptr<TrapExposition> x_;
  TrapSettings settings_;
  std::string listen_;  // what the socket is bound to; empty: none
  UvHandle<uv_udp_t> sock_;
  std::array<char, 65536> buf_{};
  std::unordered_map<std::string, Dev> devs_;
  std::unordered_map<std::string, std::string> addr_;  // address text -> key
  TokenBucket bucket_;
  TokenBucket unknown_{0, 0, 0, 0};  // datagrams from all unknown sources (max_per_source)
  TokenBucket log_{10, 10, 10, 0};
  std::uint64_t suppressed_ = 0;
};

}  // namespace

std::unique_ptr<Prober> make_trap_receiver(ProbeContext& ctx) {
  return std::make_unique<TrapReceiver>(ctx);
}

}  // namespace siteprobe::probes

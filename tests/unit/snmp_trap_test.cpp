// The SNMP trap decoder, kinds and rate limit, on datagrams encoded by net-snmp itself.
#include "probes/snmp_trap.h"

#include <catch2/catch.hpp>
#include <cstring>
#include <memory>

#include "probes/registry.h"
#include "probes/snmp_request.h"

using namespace siteprobe;
using namespace siteprobe::probes;

namespace {

using Pdu = std::unique_ptr<netsnmp_pdu, decltype(&snmp_free_pdu)>;
const Oid kTrapOid = {1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0};
const Oid kLinkDown = {1, 3, 6, 1, 6, 3, 1, 1, 5, 3};

void add_oid(netsnmp_pdu* p, const Oid& name, const Oid& value) {
  std::vector<oid> n(name.begin(), name.end()), v(value.begin(), value.end());
  REQUIRE(snmp_pdu_add_variable(p, n.data(), n.size(), ASN_OBJECT_ID, v.data(), v.size() * sizeof(oid)));
}
void add_int(netsnmp_pdu* p, const Oid& name, long value) {
  std::vector<oid> n(name.begin(), name.end());
  REQUIRE(snmp_pdu_add_variable(p, n.data(), n.size(), ASN_INTEGER, &value, sizeof value));
}

std::string encode(netsnmp_pdu* p, long version, const std::string& community) {
  netsnmp_session s;
  snmp_sess_init(&s);
  s.version = version;
  std::vector<u_char> c(community.begin(), community.end());
  s.community = c.data();
  s.community_len = c.size();
  std::string out = snmp_encode(&s, p);
  REQUIRE(!out.empty());
  return out;
}

// A v2c Trap (or InformRequest) with snmpTrapOID.0 = `trap` and ifIndex.7 = 7.
std::string v2c(const Oid& trap, int command = SNMP_MSG_TRAP2, const std::string& community = "s3cret") {
  init_net_snmp();
  Pdu p(snmp_pdu_create(command), &snmp_free_pdu);
  long ticks = 12345;
  const oid up[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
  REQUIRE(snmp_pdu_add_variable(p.get(), up, 9, ASN_TIMETICKS, &ticks, sizeof ticks));
  add_oid(p.get(), kTrapOid, trap);
  add_int(p.get(), {1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 7}, 7);
  return encode(p.get(), SNMP_VERSION_2c, community);
}

std::string v1(long generic, long specific, const Oid& enterprise, const std::uint8_t (&agent)[4]) {
  init_net_snmp();
  Pdu p(snmp_pdu_create(SNMP_MSG_TRAP), &snmp_free_pdu);
  std::vector<oid> e(enterprise.begin(), enterprise.end());
  p->enterprise = static_cast<oid*>(netsnmp_memdup(e.data(), e.size() * sizeof(oid)));
  p->enterprise_length = e.size();
  std::memcpy(p->agent_addr, agent, 4);
  p->trap_type = generic;
  p->specific_type = specific;
  p->time = 100;
  add_int(p.get(), {1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 2}, 2);
  return encode(p.get(), SNMP_VERSION_1, "public");
}

TrapMessage decode(const std::string& s) {
  return decode_trap(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

}  // namespace

TEST_CASE("trap decoder: v2c linkDown with its ifIndex", "[snmp_trap]") {
  const TrapMessage m = decode(v2c(kLinkDown));
  CHECK(m.error.empty());
  CHECK(m.version == "2c");
  CHECK(m.community == "s3cret");
  CHECK_FALSE(m.inform);
  CHECK(m.trap_oid == kLinkDown);
  CHECK(m.if_index == 7);
  CHECK(m.agent_addr.empty());
  CHECK(m.response.empty());
  std::string severity;
  CHECK(trap_kind(m.trap_oid, {}, severity) == "link_down");
  CHECK(severity == "warning");
}

TEST_CASE("trap decoder: a v2c inform is answered with a Response of the same request id", "[snmp_trap]") {
  const std::string bytes = v2c({1, 3, 6, 1, 6, 3, 1, 1, 5, 1}, SNMP_MSG_INFORM);
  const TrapMessage m = decode(bytes);
  REQUIRE(m.error.empty());
  CHECK(m.inform);
  REQUIRE_FALSE(m.response.empty());
  // Both decoded by net-snmp: the same request id and varbinds, command Response, no error.
  std::vector<u_char> in(bytes.begin(), bytes.end()), out(m.response.begin(), m.response.end());
  u_char c[64];
  std::size_t clen = sizeof c, left = in.size();
  long version = 0;
  Pdu req(snmp_pdu_create(0), &snmp_free_pdu), resp(snmp_pdu_create(0), &snmp_free_pdu);
  u_char* rest = snmp_comstr_parse(in.data(), &left, c, &clen, &version);
  REQUIRE(rest);
  REQUIRE(snmp_pdu_parse(req.get(), rest, &left) == 0);
  clen = sizeof c, left = out.size();
  rest = snmp_comstr_parse(out.data(), &left, c, &clen, &version);
  REQUIRE(rest);
  CHECK(version == SNMP_VERSION_2c);
  CHECK(std::string(reinterpret_cast<char*>(c), clen) == "s3cret");
  REQUIRE(snmp_pdu_parse(resp.get(), rest, &left) == 0);
  CHECK(resp->command == SNMP_MSG_RESPONSE);
  CHECK(resp->reqid == req->reqid);
  CHECK(resp->errstat == 0);
  int n = 0;
  for (auto* v = resp->variables; v; v = v->next_variable) ++n;
  CHECK(n == 3);
}

TEST_CASE("trap decoder: v1 generic and enterprise-specific traps", "[snmp_trap]") {
  const Oid ent = {1, 3, 6, 1, 4, 1, 5596, 10};
  TrapMessage m = decode(v1(3, 0, ent, {192, 0, 2, 7}));
  REQUIRE(m.error.empty());
  CHECK(m.version == "1");
  CHECK(m.community == "public");
  CHECK(m.trap_oid == Oid{1, 3, 6, 1, 6, 3, 1, 1, 5, 4});
  CHECK(m.agent_addr == "192.0.2.7");
  CHECK(m.if_index == 2);
  std::string severity;
  CHECK(trap_kind(m.trap_oid, {}, severity) == "link_up");
  CHECK(severity == "info");

  m = decode(v1(6, 42, ent, {0, 0, 0, 0}));
  REQUIRE(m.error.empty());
  CHECK(m.trap_oid == Oid{1, 3, 6, 1, 4, 1, 5596, 10, 0, 42});
  CHECK(m.agent_addr.empty());
  const std::vector<TrapVendor> vendor = {
      {{1, 3, 6, 1, 4, 1, 5596, 10, 0, 42}, "codec_call_failed", "critical"}};
  CHECK(trap_kind(m.trap_oid, vendor, severity) == "codec_call_failed");
  CHECK(severity == "critical");
  CHECK(trap_kind({1, 3, 6, 1, 4, 1, 5596, 10, 0, 43}, vendor, severity) == "other");
  for (std::uint32_t g = 0; g < 5; ++g) {
    m = decode(v1(g, 0, ent, {127, 0, 0, 1}));
    CHECK(trap_kind(m.trap_oid, {}, severity) == std::vector<std::string>{"cold_start", "warm_start",
                                                                          "link_down", "link_up",
                                                                          "authentication_failure"}[g]);
  }
}

TEST_CASE("trap decoder: garbage, truncation, v3 and other PDUs are dropped by reason", "[snmp_trap]") {
  CHECK(decode("").error == "decode");
  CHECK(decode("hello, world").error == "decode");
  const std::string good = v2c(kLinkDown);
  for (std::size_t n = 0; n < good.size(); ++n) CHECK(decode(good.substr(0, n)).error == "decode");
  // Every single-byte corruption either decodes or is a counted drop: never a crash.
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0xff);
    const std::string e = decode(bad).error;
    CHECK((e.empty() || e == "decode" || e == "unsupported"));
  }
  // SNMPv3: version 3, then msgGlobalData (a SEQUENCE, where v1/v2c have the community).
  const std::string v3("\x30\x0e\x02\x01\x03\x30\x09\x02\x01\x01\x02\x01\x01\x04\x01\x04", 16);
  CHECK(decode(v3).error == "decode");  // and no USM header after it
  // A v2c GET is not a trap.
  init_net_snmp();
  Pdu get(snmp_pdu_create(SNMP_MSG_GET), &snmp_free_pdu);
  const oid up[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
  snmp_add_null_var(get.get(), up, 9);
  CHECK(decode(encode(get.get(), SNMP_VERSION_2c, "public")).error == "unsupported");
  // A v2c trap without snmpTrapOID.0.
  Pdu bare(snmp_pdu_create(SNMP_MSG_TRAP2), &snmp_free_pdu);
  add_int(bare.get(), {1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 7}, 7);
  CHECK(decode(encode(bare.get(), SNMP_VERSION_2c, "public")).error == "decode");
}

TEST_CASE("trap rate limit: a token bucket of max_per_second", "[snmp_trap]") {
  TokenBucket b{100, 100, 100, 0};
  int ok = 0;
  for (int i = 0; i < 10000; ++i) ok += b.take(1'000'000'000);  // a flood within one instant
  CHECK(ok == 100);
  CHECK_FALSE(b.take(1'005'000'000));  // 5 ms later: half a token
  CHECK(b.take(1'010'000'000));        // 10 ms: one
  ok = 0;
  for (int i = 0; i < 10000; ++i) ok += b.take(1'010'000'000 + i * 100'000LL);  // 1 s of 10,000/s
  CHECK(ok >= 99);
  CHECK(ok <= 101);
}

TEST_CASE("inventory: the traps block", "[snmp_trap][config]") {
  const std::string sites = "sites:\n  - id: p\n    name: P\n    level: province\n    devices: []\n";
  auto r = parse_inventory(
      "traps:\n  listen: 127.0.0.1:9162\n  max_per_second: 50\n  debounce: 2s\n"
      "  vendor:\n    - {oid: .1.3.6.1.4.1.5596.10.0.42, kind: codec_call_failed, severity: critical}\n" +
          sites,
      "t.yaml");
  REQUIRE(r.errors.empty());
  const TrapSettings& t = r.config->traps;
  CHECK(t.listen == "127.0.0.1:9162");
  CHECK(t.max_per_second == 50);
  CHECK(t.debounce == std::chrono::seconds(2));
  CHECK(t.max_per_source == 20);
  CHECK(t.engine_id.empty());
  const auto set =
      parse_inventory("traps: {max_per_source: 5, engine_id: \"0x80001F880474657374\"}\n" + sites, "t.yaml");
  REQUIRE(set.errors.empty());
  CHECK(set.config->traps.max_per_source == 5);
  CHECK(set.config->traps.engine_id ==
        std::vector<std::uint8_t>{0x80, 0x00, 0x1f, 0x88, 0x04, 't', 'e', 's', 't'});
  REQUIRE(t.vendor.size() == 1);
  CHECK(t.vendor[0].oid == std::vector<std::uint32_t>{1, 3, 6, 1, 4, 1, 5596, 10, 0, 42});
  CHECK(t.vendor[0].kind == "codec_call_failed");
  CHECK(parse_inventory(sites, "t.yaml").config->traps.listen.empty());  // off by default
  CHECK(parse_inventory("traps: {listen: \"[::1]:162\"}\n" + sites, "t.yaml").errors.empty());
  for (const char* bad :
       {"traps: {listen: 127.0.0.1}\n", "traps: {listen: \"localhost:162\"}\n",
        "traps: {listen: \"::1:162\"}\n", "traps: {listen: 127.0.0.1:0}\n", "traps: {max_per_second: 0}\n",
        "traps: {port: 162}\n", "traps: {vendor: [{oid: 1.3.x, kind: a}]}\n",
        "traps: {vendor: [{oid: 1.3.6, kind: Bad-Kind}]}\n",
        "traps: {vendor: [{oid: 1.3.6, kind: a, severity: loud}]}\n", "traps: {vendor: [{kind: a}]}\n",
        "traps: {vendor: [{oid: 1.3.6, kind: a}, {oid: 1.3.6, kind: b}]}\n", "traps: {max_per_source: 0}\n",
        "traps: {engine_id: 0x8000}\n", "traps: {engine_id: \"0x80001f88zz\"}\n",
        "traps: {engine_id: \"0x8000f\"}\n"}) {
    INFO(bad);
    CHECK(parse_inventory(bad + sites, "t.yaml").errors.size() == 1);
  }
}

TEST_CASE("trap decoder: SNMPv3 authPriv traps with the sending device's keys", "[snmp_trap]") {
  init_net_snmp();
  AuthProfile a;
  a.name = "v3";
  a.version = "3";
  a.username = "monitor";
  a.security_level = "authPriv";
  a.auth_protocol = "SHA-256";
  a.auth_passphrase = "v3AuthSecret99";
  a.priv_protocol = "AES";
  a.priv_passphrase = "v3PrivSecret99";
  const UsmKeys keys = usm_keys(a);
  REQUIRE(keys.auth_ku.size() > 0);
  // The sender: its own engine ID, its user made with the same passphrases (or others).
  const auto v3trap = [](const UsmKeys& k, const std::string& engine, int command = SNMP_MSG_TRAP2) {
    netsnmp_session s;
    snmp_sess_init(&s);
    std::vector<u_char> eid(engine.begin(), engine.end());
    char user[] = "monitor";
    s.version = SNMP_VERSION_3;
    s.securityName = user;
    s.securityNameLen = 7;
    s.securityModel = SNMP_SEC_MODEL_USM;
    s.securityLevel = SNMP_SEC_LEVEL_AUTHPRIV;
    s.securityEngineID = s.contextEngineID = eid.data();
    s.securityEngineIDLen = s.contextEngineIDLen = eid.size();
    std::size_t len = 0;
    s.securityAuthProto = const_cast<oid*>(auth_proto(k.auth_protocol, len));
    s.securityAuthProtoLen = len;
    std::memcpy(s.securityAuthKey, k.auth_ku.data(), k.auth_ku.size());
    s.securityAuthKeyLen = k.auth_ku.size();
    s.securityPrivProto = const_cast<oid*>(priv_proto(k.priv_protocol, len));
    s.securityPrivProtoLen = len;
    std::memcpy(s.securityPrivKey, k.priv_ku.data(), k.priv_ku.size());
    s.securityPrivKeyLen = k.priv_ku.size();
    REQUIRE(make_user(&s));
    Pdu p(snmp_pdu_create(command), &snmp_free_pdu);
    long ticks = 1;
    const oid up[] = {1, 3, 6, 1, 2, 1, 1, 3, 0};
    REQUIRE(snmp_pdu_add_variable(p.get(), up, 9, ASN_TIMETICKS, &ticks, sizeof ticks));
    add_oid(p.get(), kTrapOid, kLinkDown);
    add_int(p.get(), {1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 5}, 5);
    p->version = SNMP_VERSION_3;  // and the rest of the header as snmp_sess_send fills it
    p->securityModel = SNMP_SEC_MODEL_USM;
    p->securityLevel = SNMP_SEC_LEVEL_AUTHPRIV;
    p->securityName = strdup("monitor");
    p->securityNameLen = 7;
    p->securityEngineID = static_cast<u_char*>(netsnmp_memdup(eid.data(), eid.size()));
    p->securityEngineIDLen = eid.size();
    p->contextEngineID = static_cast<u_char*>(netsnmp_memdup(eid.data(), eid.size()));
    p->contextEngineIDLen = eid.size();
    p->contextName = strdup("");
    p->contextNameLen = 0;
    std::string out = snmp_encode(&s, p.get());
    INFO(snmp_api_errstring(s.s_snmp_errno));
    REQUIRE(!out.empty());
    return out;
  };
  const std::string engine("\x80\x00\x1f\x88\x04sender1", 12);
  const std::string bytes = v3trap(keys, engine);
  const UsmLookup lookup = [&](const std::string& user) { return user == "monitor" ? &keys : nullptr; };
  TrapMessage m = decode(bytes);  // no keys at all
  CHECK(m.error == "auth");
  m = decode_trap(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), lookup);
  REQUIRE(m.error.empty());
  CHECK(m.version == "3");
  CHECK(m.trap_oid == kLinkDown);
  CHECK(m.if_index == 5);
  CHECK(m.community.empty());
  CHECK(m.response.empty());
  // Again (the user is made again for each trap), and from a second engine.
  CHECK(decode_trap(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), lookup).error.empty());
  const std::string other = v3trap(keys, std::string("\x80\x00\x1f\x88\x04sender2", 12));
  CHECK(decode_trap(reinterpret_cast<const std::uint8_t*>(other.data()), other.size(), lookup).error.empty());
  // Sent with another auth passphrase, or another privacy passphrase: auth.
  for (int which = 0; which < 2; ++which) {
    AuthProfile w = a;
    (which ? w.priv_passphrase : w.auth_passphrase) = "wrongSecret99";
    const std::string bad = v3trap(usm_keys(w), std::string("\x80\x00\x1f\x88\x04sender3", 12));
    CHECK(decode_trap(reinterpret_cast<const std::uint8_t*>(bad.data()), bad.size(), lookup).error == "auth");
  }
  // The users made for a message are not kept: a sender cannot grow net-snmp's list.
  const std::string fresh = v3trap(keys, std::string("\x80\x00\x1f\x88\x04sender4", 12));
  std::string e4("\x80\x00\x1f\x88\x04sender4", 12);
  char monitor[] = "monitor";
  if (usmUser* u = usm_get_user(reinterpret_cast<u_char*>(e4.data()), e4.size(), monitor)) {  // the sender's
    usm_remove_user(u);
    usm_free_user(u);
  }
  CHECK(decode_trap(reinterpret_cast<const std::uint8_t*>(fresh.data()), fresh.size(), lookup).error.empty());
  CHECK(usm_get_user(reinterpret_cast<u_char*>(e4.data()), e4.size(), monitor) == nullptr);
  // A user the device does not have: auth.
  const UsmLookup none = [](const std::string&) -> const UsmKeys* { return nullptr; };
  CHECK(decode_trap(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), none).error == "auth");
  // Truncated v3 messages never decode.
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::string e = decode_trap(reinterpret_cast<const std::uint8_t*>(bytes.data()), n, lookup).error;
    CHECK((e == "decode" || e == "auth"));
  }

  // Informs go to the receiver's own engine: answered with a Response of the same request.
  set_trap_engine_id({});
  const std::string ours = trap_engine_id();
  CHECK(ours.size() <= 32);
  CHECK(ours.rfind(std::string("\x80\x00\x1f\x88\x04siteprobe@", 15), 0) == 0);
  const std::string inform = v3trap(keys, ours, SNMP_MSG_INFORM);
  m = decode_trap(reinterpret_cast<const std::uint8_t*>(inform.data()), inform.size(), lookup);
  REQUIRE(m.error.empty());
  CHECK(m.inform);
  CHECK(!m.report);
  CHECK(m.trap_oid == kLinkDown);
  CHECK(!m.response.empty());
  CHECK(decode_trap(reinterpret_cast<const std::uint8_t*>(inform.data()), inform.size(), none).error ==
        "auth");
  // To another engine, an inform is not for this receiver.
  const std::string elsewhere = v3trap(keys, std::string("\x80\x00\x1f\x88\x04sender5", 12), SNMP_MSG_INFORM);
  CHECK(
      decode_trap(reinterpret_cast<const std::uint8_t*>(elsewhere.data()), elsewhere.size(), lookup).error ==
      "unsupported");
  // A configured engine ID is the receiver's from then on.
  const std::vector<std::uint8_t> configured = {0x80, 0x00, 0x1f, 0x88, 0x04, 't', 'e', 's', 't'};
  set_trap_engine_id(configured);
  CHECK(trap_engine_id() == std::string(configured.begin(), configured.end()));
  const std::string to_new = v3trap(keys, trap_engine_id(), SNMP_MSG_INFORM);
  CHECK(decode_trap(reinterpret_cast<const std::uint8_t*>(to_new.data()), to_new.size(), lookup).inform);
}

TEST_CASE("trap decoder: an SNMPv3 engine discovery probe gets a Report with the receiver's engine ID",
          "[snmp_trap]") {
  set_trap_engine_id({});
  // As net-snmp's senders probe (RFC 3414 4): noAuthNoPriv, no user, no engine ID, an empty GET.
  netsnmp_session s;
  snmp_sess_init(&s);
  char empty[] = "";
  s.version = SNMP_VERSION_3;
  s.securityName = empty;
  s.securityModel = SNMP_SEC_MODEL_USM;
  s.securityLevel = SNMP_SEC_LEVEL_NOAUTH;
  Pdu p(snmp_pdu_create(SNMP_MSG_GET), &snmp_free_pdu);
  p->version = SNMP_VERSION_3;
  p->securityModel = SNMP_SEC_MODEL_USM;
  p->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
  p->securityName = strdup("");
  p->contextName = strdup("");
  const std::string probe = snmp_encode(&s, p.get());
  REQUIRE(!probe.empty());
  const TrapMessage m = decode(probe);
  REQUIRE(m.error.empty());
  CHECK(m.report);
  CHECK(!m.inform);
  REQUIRE(!m.response.empty());
  // The sender reads the Report: usmStatsUnknownEngineIDs.0, from the receiver's engine.
  Pdu r(snmp_pdu_create(0), &snmp_free_pdu);
  std::vector<u_char> in(m.response.begin(), m.response.end());
  snmp_parse(nullptr, &s, r.get(), in.data(), in.size());
  CHECK(r->command == SNMP_MSG_REPORT);
  CHECK(std::string(reinterpret_cast<const char*>(r->securityEngineID), r->securityEngineIDLen) ==
        trap_engine_id());
  REQUIRE(r->variables);
  const Oid unknown_engine = {1, 3, 6, 1, 6, 3, 15, 1, 1, 4, 0};
  CHECK(to_oid(r->variables->name, r->variables->name_length) == unknown_engine);
  // Truncated probes never get an answer.
  for (std::size_t n = 0; n < probe.size(); ++n)
    CHECK(decode_trap(reinterpret_cast<const std::uint8_t*>(probe.data()), n).response.empty());
}

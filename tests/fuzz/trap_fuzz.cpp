// libFuzzer target: the SNMP trap decoder (probes/snmp_trap.h) on any datagram, with the keys of
// one v3 user ("monitor": SHA-256, AES) for any sender. Checks:
//  - the result is a trap (a version, a trap OID), a v3 Report (engine discovery or time window:
//    it decodes as a Report) or one of the drop reasons decode, unsupported and auth, never
//    anything else;
//  - an inform's Response decodes again with net-snmp, as a Response of the same request id and
//    community;
//  - every trap OID has a kind.
#include <cstring>
#include <string>

#include "fuzz.h"
#include "probes/snmp_request.h"
#include "probes/snmp_trap.h"

using namespace siteprobe::probes;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const UsmKeys keys = [] {
    siteprobe::AuthProfile a;
    a.version = "3";
    a.username = "monitor";
    a.security_level = "authPriv";
    a.auth_protocol = "SHA-256";
    a.auth_passphrase = "v3AuthSecret99";
    a.priv_protocol = "AES";
    a.priv_passphrase = "v3PrivSecret99";
    set_trap_engine_id({});
    return usm_keys(a);
  }();
  const TrapMessage m =
      decode_trap(data, size, [](const std::string& user) { return user == "monitor" ? &keys : nullptr; });
  if (!m.error.empty()) {
    check(m.error == "decode" || m.error == "unsupported" || m.error == "auth", "drop reason", m.error);
    return 0;
  }
  if (m.report) {
    check(m.version == "3" && !m.inform && !m.response.empty(), "a Report");
    netsnmp_session s;
    snmp_sess_init(&s);
    s.version = SNMP_VERSION_3;
    std::string r = m.response;
    netsnmp_pdu* pdu = snmp_pdu_create(0);
    check(pdu != nullptr, "pdu");
    snmp_parse(nullptr, &s, pdu, reinterpret_cast<u_char*>(r.data()), r.size());
    check(pdu->command == SNMP_MSG_REPORT, "Report PDU");
    snmp_free_pdu(pdu);
    return 0;
  }
  check(m.version == "1" || m.version == "2c" || m.version == "3", "version", m.version);
  check(!m.trap_oid.empty(), "trap OID");
  std::string severity;
  check(!trap_kind(m.trap_oid, {}, severity).empty() && !severity.empty(), "kind");
  check(m.inform == !m.response.empty(), "a Response exactly for an inform");
  if (!m.inform || m.version == "3") return 0;
  std::string r = m.response;
  u_char community[256];
  std::size_t clen = sizeof community, left = r.size();
  long version = 0;
  u_char* rest = snmp_comstr_parse(reinterpret_cast<u_char*>(r.data()), &left, community, &clen, &version);
  check(rest != nullptr && version == SNMP_VERSION_2c, "Response header");
  check(std::string(reinterpret_cast<char*>(community), clen) == m.community, "Response community");
  netsnmp_pdu* pdu = snmp_pdu_create(0);
  check(pdu && snmp_pdu_parse(pdu, rest, &left) == 0 && pdu->command == SNMP_MSG_RESPONSE, "Response PDU");
  snmp_free_pdu(pdu);
  return 0;
}

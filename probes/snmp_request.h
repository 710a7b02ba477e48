// One SNMP poll's requests: what to ask a device for, and the state machine that turns net-snmp's
// callbacks (a reply PDU, a retransmission, a timeout) into the next step. Free of sockets and
// clocks (times are nanoseconds handed in), so tests drive it with fabricated PDUs.
#pragma once

// clang-format off: net-snmp needs its config header first
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
// clang-format on
// net-snmp names GETBULK's fields with macros; they would rename SnmpSettings::max_repetitions.
#undef max_repetitions
#undef non_repeaters

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "probes/snmp.h"

namespace siteprobe::probes {

// The one owner of a net-snmp single session (snmp_sess_open): closes it, and its socket, when
// destroyed. Closing calls back for the requests still pending.
class SnmpSession {
 public:
  SnmpSession() = default;
  ~SnmpSession() { reset(); }
  SnmpSession(const SnmpSession&) = delete;
  SnmpSession& operator=(const SnmpSession&) = delete;
  SnmpSession(SnmpSession&& o) noexcept : h_(o.h_) { o.h_ = nullptr; }
  SnmpSession& operator=(SnmpSession&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = o.h_;
      o.h_ = nullptr;
    }
    return *this;
  }
  // Opens a session like `s` (closing any held); false if net-snmp could not.
  bool open(netsnmp_session* s) {
    reset();
    h_ = snmp_sess_open(s);
    return h_ != nullptr;
  }
  void* get() const { return h_; }
  explicit operator bool() const { return h_ != nullptr; }
  netsnmp_session* session() const { return snmp_sess_session(h_); }
  netsnmp_transport* transport() const { return snmp_sess_transport(h_); }
  void reset() noexcept {
    // Its result says only whether the handle was valid: nothing to do about it here.
    if (h_) (void)snmp_sess_close(h_);
    h_ = nullptr;
  }

 private:
  void* h_ = nullptr;
};

// What one device's polls learn about its agent, kept from poll to poll.
struct SnmpAgent {
  std::string engine_id;  // v3; empty: discover it first
  int max_rep = 0;        // GETBULK max-repetitions, halved on tooBig and on timeouts of walks
  int rows = 0;           // the most rows of a column in the last complete walk (0: none yet)
  bool need32 = false;    // some interface has no HC counters: walk the 32-bit columns too
  bool no_fold = false;   // answered a GETBULK's non-repeaters as repeaters: GET the scalars
};

// Row nodes of finished polls (their OID and string keep their capacity), for the next polls' walk
// replies: a poll's rows then cost no allocation, nor the fastbin churn that makes glibc
// consolidate before each of net-snmp's 1 KB varbinds. At most kMax are kept.
struct SnmpRowPool {
  static constexpr std::size_t kMax = 4096;
  std::vector<std::map<Oid, SnmpVal>::node_type> nodes;
};

class SnmpRequest {
 public:
  enum class Step { Discover, Get, Walk, Done };
  // What the caller does next: wait for a reply, send the next request, or end the poll.
  enum class Next { Wait, Send, Fail, Done };
  struct Column {
    Oid base, cur;
    bool done = false;
    std::map<Oid, SnmpVal>* rows = nullptr;  // its rows in data(), once it has some
  };

  // `version` is "1", "2c" or "3". Errors of the poll that do not end it go to `state`.
  SnmpRequest(std::string version, int max_interfaces, SnmpAgent& agent, SnmpDeviceState& state,
              std::int64_t deadline_ns);

  // Adds what the modules (system, interfaces) and custom objects need, then picks the first step:
  // next() is Send, or Done when there is nothing to ask.
  void plan(const std::vector<std::string>& modules, const std::vector<const SnmpObject*>& custom);

  // The PDU of the current step (the caller owns it), or null if net-snmp could not make one.
  netsnmp_pdu* make_pdu();
  // Walk replies take their row nodes from `pool` (not owned; null: none) while it has some.
  void use_pool(SnmpRowPool* pool) { pool_ = pool; }
  // Gives the rows collected back to `pool` (data() loses them).
  void recycle(SnmpRowPool& pool);
  // Whether the caller could send that PDU.
  void on_sent(bool ok) {
    if (ok)
      ++sent_;
    else
      fail("send");
  }
  // A callback of net-snmp for the request in flight (op: NETSNMP_CALLBACK_OP_*; pdu may be null).
  void on_callback(int op, netsnmp_pdu* pdu);
  void fail(const char* kind) {
    next_ = Next::Fail;
    fail_kind_ = kind;
  }
  // Past the poll's deadline: it fails as a timeout.
  bool expired(std::int64_t now_ns) const { return now_ns >= deadline_ns_; }
  // Set once the engine ID was discovered: the session must take it (and the user be made again).
  bool take_rekey() { return std::exchange(rekey_, false); }

  Step step() const { return step_; }
  Next next() const { return next_; }
  const std::string& fail_kind() const { return fail_kind_; }
  const PollData& data() const { return data_; }
  const std::vector<Oid>& scalars() const { return scalars_; }
  const std::vector<Column>& columns() const { return cols_; }
  std::uint64_t sent() const { return sent_; }
  std::uint64_t received() const { return received_; }
  std::int64_t deadline_ns() const { return deadline_ns_; }

  long reqid = 0;  // of the request in flight; -1 once the poll ended

 private:
  void walk_reply(netsnmp_pdu* pdu);
  // Takes the non-repeaters' varbinds of a walk reply (its first folded_.size()); false if failed.
  bool take_folded(netsnmp_pdu* pdu);
  // The agent got the non-repeaters wrong: ask for the folded scalars with a GET, now and after.
  void unfold();
  // Stores a scalar's value (Missing if the agent has none): false if over the poll's byte budget.
  bool keep_scalar(Oid o, const netsnmp_variable_list* v, std::size_t& missing);
  // Value bytes only: OIDs are bounded already by rows x columns x net-snmp's MAX_OID_LEN. The
  // budget grows with max_interfaces, so a chassis allowed many rows is not cut short by it.
  bool count_bytes(const netsnmp_variable_list* v);

  std::string version_;
  int max_interfaces_;
  SnmpAgent& agent_;
  SnmpDeviceState& state_;
  std::int64_t deadline_ns_;
  Step step_ = Step::Get;
  Next next_ = Next::Wait;
  std::string fail_kind_;
  std::vector<Oid> scalars_;  // sorted: asked for with a GET
  // Scalars of instance .0 asked for in the first GETBULK as its non-repeaters, by the OID of their
  // object (GETNEXT of sysUpTime is sysUpTime.0), until its reply came. Sorted.
  std::vector<Oid> folded_;
  std::vector<Column> cols_;
  PollData data_;
  bool resent_time_ = false, rekey_ = false;
  std::uint64_t sent_ = 0, received_ = 0;
  std::size_t bytes_ = 0;  // decoded so far, bounded by kMaxPollBytes
  int max_rep_ = 0;        // of the GETBULK in flight
  bool walking_ = false;   // a reply of the walk came: its columns have moved on
  SnmpRowPool* pool_ = nullptr;
};

// The datagram of `pdu` as session `s` would send it ("" if net-snmp cannot encode it).
std::string snmp_encode(netsnmp_session* s, netsnmp_pdu* pdu);
// USM helpers of the poller, shared with the trap receiver (probes/snmp_trap.h): an auth profile's
// protocols, and (re)making the process-wide USM user of a session from its Ku and engine ID.
const oid* auth_proto(const std::string& p, std::size_t& len);
const oid* priv_proto(const std::string& p, std::size_t& len);
// Ku: `pass` hashed with the auth protocol (a 1 MB hash: once per profile and load); empty on error.
std::vector<u_char> passphrase_ku(const std::string& auth_protocol, const std::string& pass);
bool make_user(netsnmp_session* ss);
// Sets net-snmp up once per process (no config files, no MIBs, no logging of its own).
void init_net_snmp();

// net-snmp's variable and OID as siteprobe keeps them.
SnmpVal to_val(const netsnmp_variable_list* v);
void to_val(const netsnmp_variable_list* v, SnmpVal& into);  // reuses into's string
Oid to_oid(const oid* o, std::size_t n);

}  // namespace siteprobe::probes

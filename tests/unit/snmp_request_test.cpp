// The SNMP request state machine, fed fabricated PDUs, and the poll schedule, on made-up clocks.
#include "probes/snmp_request.h"

#include <catch2/catch.hpp>
#include <memory>

#include "inventory/config.h"
#include "probes/snmp_schedule.h"

using namespace siteprobe;
using namespace siteprobe::probes;

namespace {

using Pdu = std::unique_ptr<netsnmp_pdu, decltype(&snmp_free_pdu)>;
using Next = SnmpRequest::Next;
using Step = SnmpRequest::Step;

const Oid kCol = {1, 3, 6, 1, 4, 1, 9, 1};  // a walked custom column
const SnmpObject kWalked{"load_percent", kCol, "gauge", true, "cpu", ""};
const SnmpObject kScalar{"temp", {1, 3, 6, 1, 4, 1, 8, 2, 0}, "gauge", false, "", ""};  // before kCol
constexpr std::int64_t kDeadline = 9'000'000'000;

Oid row(const Oid& base, std::uint32_t i) {
  Oid o = base;
  o.push_back(i);
  return o;
}

// A reply carrying INTEGER varbinds (or endOfMibView for a negative value).
Pdu reply(const std::vector<std::pair<Oid, long>>& vars, long errstat = SNMP_ERR_NOERROR) {
  Pdu p(snmp_pdu_create(SNMP_MSG_RESPONSE), &snmp_free_pdu);
  REQUIRE(p);
  p->errstat = errstat;
  for (const auto& [o, v] : vars) {
    std::vector<oid> name(o.begin(), o.end());
    const bool end = v < 0;
    REQUIRE(snmp_pdu_add_variable(p.get(), name.data(), name.size(), end ? SNMP_ENDOFMIBVIEW : ASN_INTEGER,
                                  end ? nullptr : &v, end ? 0 : sizeof v));
  }
  return p;
}

struct Fixture {
  SnmpAgent agent;
  SnmpDeviceState state;
  SnmpRequest req;
  explicit Fixture(const std::string& version = "2c", int max_interfaces = 100,
                   const std::vector<const SnmpObject*>& custom = {&kWalked})
      : agent{"", 10}, req(version, max_interfaces, agent, state, kDeadline) {
    req.plan({}, custom);
  }
  Pdu send() {
    REQUIRE(req.next() == Next::Send);
    Pdu p(req.make_pdu(), &snmp_free_pdu);
    REQUIRE(p);
    req.on_sent(true);
    return p;
  }
  void receive(const Pdu& p) { req.on_callback(NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE, p.get()); }
  double errors(const std::string& kind) const {
    SnmpText out;
    state.render("", out);
    const std::string& s = out["siteprobe_snmp_errors_total"];
    const auto at = s.find("kind=\"" + kind + "\"} ");
    REQUIRE(at != std::string::npos);
    return std::stod(s.substr(s.find("} ", at) + 2));
  }
};

}  // namespace

TEST_CASE("A walk sends GETBULK for its columns until a varbind leaves them", "[snmp][request]") {
  Fixture f;
  CHECK(f.req.step() == Step::Walk);
  Pdu bulk = f.send();
  CHECK(bulk->command == SNMP_MSG_GETBULK);
  CHECK(bulk->errindex == 10);  // max-repetitions
  CHECK(f.req.reqid == bulk->reqid);
  f.receive(reply({{row(kCol, 1), 5}, {row(kCol, 2), 7}}));
  CHECK(f.req.next() == Next::Send);  // the column goes on: ask from row 2
  Pdu again = f.send();
  REQUIRE(again->variables);
  CHECK(to_oid(again->variables->name, again->variables->name_length) == row(kCol, 2));
  f.receive(reply({{row(kCol, 3), 9}, {{1, 3, 6, 1, 4, 1, 9, 2, 0}, 1}}));  // past the column: end
  CHECK(f.req.next() == Next::Done);
  CHECK(f.req.step() == Step::Done);
  const auto& rows = f.req.data().columns.at(kCol);
  REQUIRE(rows.size() == 3);
  CHECK(rows.at({3}).i == 9);
  CHECK(f.req.sent() == 2);
  CHECK(f.req.received() == 2);
}

TEST_CASE("A walk's first GETBULK asks for one row more than the agent had last time", "[snmp][request]") {
  Fixture f;
  Pdu bulk = f.send();
  CHECK(bulk->errindex == 10);  // nothing known yet
  f.receive(reply({{row(kCol, 1), 5}, {row(kCol, 2), 6}, {{1, 3, 6, 1, 4, 1, 9, 3}, 0}}));
  REQUIRE(f.req.next() == Next::Done);
  CHECK(f.agent.rows == 2);
  SnmpRequest next("2c", 100, f.agent, f.state, kDeadline);
  next.plan({}, {&kWalked});
  Pdu first(next.make_pdu(), &snmp_free_pdu);
  CHECK(first->errindex == 3);
  next.on_sent(true);
  // The table grew: the walk goes on, with the whole max-repetitions.
  next.on_callback(NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE,
                   reply({{row(kCol, 1), 5}, {row(kCol, 2), 6}, {row(kCol, 3), 7}}).get());
  REQUIRE(next.next() == Next::Send);
  Pdu more(next.make_pdu(), &snmp_free_pdu);
  CHECK(more->errindex == 10);
}

TEST_CASE("endOfMibView ends a column; GETNEXT for v1", "[snmp][request]") {
  Fixture f("1");
  Pdu next = f.send();
  CHECK(next->command == SNMP_MSG_GETNEXT);
  f.receive(reply({{row(kCol, 1), -1}}));
  CHECK(f.req.next() == Next::Done);
  CHECK(f.req.data().columns.count(kCol) == 0);
}

TEST_CASE("tooBig halves max-repetitions down to 1, then fails", "[snmp][request]") {
  Fixture f;
  for (int expect : {10, 5, 2, 1}) {
    Pdu bulk = f.send();
    CHECK(bulk->errindex == expect);
    f.receive(reply({}, SNMP_ERR_TOOBIG));
  }
  CHECK(f.agent.max_rep == 1);  // kept for the next poll
  CHECK(f.req.next() == Next::Fail);
  CHECK(f.req.fail_kind() == "too_big");
  CHECK(f.errors("too_big") == 3);  // the halvings; the failure is counted when the poll ends
}

TEST_CASE("Retransmissions count as sent; a timeout fails and halves a walk's max-repetitions",
          "[snmp][request]") {
  Fixture f;
  Pdu bulk = f.send();
  f.req.on_callback(NETSNMP_CALLBACK_OP_RESEND, nullptr);
  CHECK(f.req.next() == Next::Wait);
  CHECK(f.req.sent() == 2);
  CHECK_FALSE(f.req.expired(kDeadline - 1));
  CHECK(f.req.expired(kDeadline));
  f.req.on_callback(NETSNMP_CALLBACK_OP_TIMED_OUT, nullptr);
  CHECK(f.req.next() == Next::Fail);
  CHECK(f.req.fail_kind() == "timeout");
  CHECK(f.agent.max_rep == 5);
}

TEST_CASE("More rows than max_interfaces is too_many_rows", "[snmp][request]") {
  Fixture f("2c", 2);
  Pdu bulk = f.send();
  f.receive(reply({{row(kCol, 1), 1}, {row(kCol, 2), 2}, {row(kCol, 3), 3}}));
  CHECK(f.req.next() == Next::Fail);
  CHECK(f.req.fail_kind() == "too_many_rows");
}

TEST_CASE("More varbinds than asked is oversized", "[snmp][request]") {
  SECTION("walk") {
    Fixture f;
    f.agent.max_rep = 2;
    Pdu bulk = f.send();
    f.receive(reply({{row(kCol, 1), 1}, {row(kCol, 2), 2}, {row(kCol, 3), 3}}));
    CHECK(f.req.fail_kind() == "oversized");
  }
  SECTION("get") {
    Fixture f("2c", 100, {&kScalar});
    CHECK(f.req.step() == Step::Get);
    Pdu get = f.send();
    CHECK(get->command == SNMP_MSG_GET);
    f.receive(reply({{kScalar.oid, 1}, {kScalar.oid, 2}}));
    CHECK(f.req.fail_kind() == "oversized");
  }
}

TEST_CASE("Replies that cannot be right are decode errors", "[snmp][request]") {
  SECTION("a scalar not asked for") {
    Fixture f("2c", 100, {&kScalar});
    Pdu get = f.send();
    f.receive(reply({{{1, 3, 6, 1, 4, 1, 9, 3, 0}, 1}}));
    CHECK(f.req.next() == Next::Fail);
    CHECK(f.req.fail_kind() == "decode");
  }
  SECTION("an empty walk reply") {
    Fixture f;
    Pdu bulk = f.send();
    f.receive(reply({}));
    CHECK(f.req.fail_kind() == "decode");
  }
  SECTION("a column that does not advance ends, counted") {
    Fixture f;
    Pdu bulk = f.send();
    f.receive(reply({{row(kCol, 4), 1}}));
    Pdu again = f.send();
    f.receive(reply({{row(kCol, 4), 1}}));
    CHECK(f.req.next() == Next::Done);
    CHECK(f.errors("not_increasing") == 1);
  }
}

TEST_CASE("Scalars of instance .0 ride in the first GETBULK as its non-repeaters", "[snmp][request]") {
  const Oid object(kScalar.oid.begin(), kScalar.oid.end() - 1);
  SECTION("one request for both") {
    Fixture f("2c", 100, {&kScalar, &kWalked});
    CHECK(f.req.step() == Step::Walk);
    Pdu bulk = f.send();
    CHECK(bulk->command == SNMP_MSG_GETBULK);
    CHECK(bulk->errstat == 1);  // non-repeaters
    REQUIRE(bulk->variables);
    CHECK(to_oid(bulk->variables->name, bulk->variables->name_length) == object);
    f.receive(
        reply({{kScalar.oid, 42}, {row(kCol, 1), 5}, {row(kCol, 2), 6}, {{1, 3, 6, 1, 4, 1, 9, 3}, 0}}));
    CHECK(f.req.next() == Next::Done);
    CHECK(f.req.data().scalars.at(kScalar.oid).i == 42);
    CHECK(f.req.data().columns.at(kCol).size() == 2);
    CHECK(f.req.sent() == 1);
  }
  SECTION("later requests of the walk have none") {
    Fixture f("2c", 100, {&kScalar, &kWalked});
    Pdu bulk = f.send();
    f.receive(reply({{kScalar.oid, 42}, {row(kCol, 1), 5}}));
    Pdu again = f.send();
    CHECK(again->errstat == 0);
    REQUIRE(again->variables);
    CHECK(to_oid(again->variables->name, again->variables->name_length) == row(kCol, 1));
    CHECK_FALSE(again->variables->next_variable);
  }
  SECTION("an object the agent lacks is missing: its next OID is something else") {
    Fixture f("2c", 100, {&kScalar, &kWalked});
    Pdu bulk = f.send();
    f.receive(reply({{{1, 3, 6, 1, 4, 1, 8, 2, 7, 1}, 3}, {row(kCol, 1), 5}, {{1, 3, 6, 1, 4, 1, 9, 3}, 0}}));
    CHECK(f.req.next() == Next::Done);
    CHECK(f.req.data().scalars.at(kScalar.oid).type == SnmpVal::T::Missing);
    CHECK(f.errors("no_such_name") == 1);
  }
  SECTION("fewer varbinds than non-repeaters is a decode error") {
    Fixture f("2c", 100, {&kScalar, &kWalked});
    Pdu bulk = f.send();
    f.receive(reply({{kScalar.oid, 42}}));
    CHECK(f.req.fail_kind() == "decode");
  }
  SECTION("a scalar of another instance, or after a column, is fetched with a GET first; v1 GETs all") {
    const SnmpObject cell{"cell", {1, 3, 6, 1, 4, 1, 8, 2, 1}, "gauge", false, "", ""};
    const SnmpObject late{"late", {1, 3, 6, 1, 4, 1, 9, 2, 0}, "gauge", false, "", ""};
    for (const char* version : {"2c", "1"}) {
      Fixture f(version, 100, {&cell, &late, &kScalar, &kWalked});
      CHECK(f.req.step() == Step::Get);
      Pdu get = f.send();
      CHECK(get->command == SNMP_MSG_GET);
      std::size_t n = 0;
      for (auto* v = get->variables; v; v = v->next_variable) ++n;
      CHECK(n == (std::string(version) == "1" ? 3 : 2));
    }
  }
}

TEST_CASE("An agent that repeats the non-repeaters gets the scalars by GET from then on", "[snmp][request]") {
  const Oid after = {1, 3, 6, 1, 4, 1, 8, 5, 0};  // what follows the scalar in the agent's MIB
  const Oid end = {1, 3, 6, 1, 4, 1, 9, 3};       // past the column
  Fixture f("2c", 100, {&kScalar, &kWalked});
  f.agent.max_rep = 2;
  Pdu bulk = f.send();
  SECTION("cut short: the scalar's next OID where the column's next row belongs") {
    f.receive(reply({{kScalar.oid, 42}, {row(kCol, 1), 5}, {after, 1}}));
  }
  SECTION("more varbinds than asked") {
    f.receive(reply({{kScalar.oid, 42}, {row(kCol, 1), 5}, {after, 1}, {row(kCol, 2), 6}, {after, 1}}));
  }
  SECTION("after its column ended") {
    f.receive(reply({{kScalar.oid, 42}, {end, 5}, {after, 1}}));
  }
  CHECK(f.agent.no_fold);
  CHECK(f.req.step() == Step::Get);
  Pdu get = f.send();
  CHECK(get->command == SNMP_MSG_GET);
  REQUIRE(get->variables);
  CHECK(to_oid(get->variables->name, get->variables->name_length) == kScalar.oid);
  f.receive(reply({{kScalar.oid, 43}}));
  Pdu walk = f.send();  // the walk starts over, without non-repeaters
  CHECK(walk->errstat == 0);
  CHECK(to_oid(walk->variables->name, walk->variables->name_length) == kCol);
  f.receive(reply({{row(kCol, 1), 5}, {end, 1}}));
  CHECK(f.req.next() == Next::Done);
  CHECK(f.req.data().scalars.at(kScalar.oid).i == 43);
  CHECK(f.req.data().columns.at(kCol).size() == 1);
  SnmpRequest next("2c", 100, f.agent, f.state, kDeadline);  // the agent's next poll: GET first
  next.plan({}, {&kScalar, &kWalked});
  CHECK(next.step() == Step::Get);
}

// ---- SnmpSchedule ----

namespace {
constexpr std::int64_t kS = 1'000'000'000;

// Runs the schedule once a second from 0 to `end_s`; every poll ends at once. Returns "key@s".
std::vector<std::string> run(SnmpSchedule& s, int end_s) {
  std::vector<std::string> starts;
  for (int t = 0; t <= end_s; ++t) {
    s.advance(t * kS);
    while (auto k = s.start_next()) {
      starts.push_back(*k + "@" + std::to_string(t));
      s.finished(*k);
    }
  }
  return starts;
}
}  // namespace

// Phases on a 10 s grid (splay_offset_ns): b 4.75 s, d 6.26 s, c 7.69 s, a 8.19 s; b on 30 s: 14.75 s.
TEST_CASE("Each device is polled on its own interval's splayed grid", "[snmp][schedule]") {
  CHECK(splay_offset_ns("a", 10 * kS) == 8'190'756'429);
  CHECK(splay_offset_ns("b", 30 * kS) == 14'749'764'508);
  SnmpSchedule s;
  s.set("a", 10 * kS, 0, "");
  s.set("b", 30 * kS, 0, "");
  CHECK(s.next_due() == 8'190'756'429);
  CHECK(run(s, 40) == std::vector<std::string>{"a@9", "b@15", "a@19", "a@29", "a@39"});
  s.set("a", 10 * kS, 40 * kS, "");       // same interval: nothing moves
  CHECK(s.next_due() == 44'749'764'508);  // b
  s.set("a", 20 * kS, 40 * kS, "");       // a new interval: that interval's grid
  CHECK(run(s, 80) == std::vector<std::string>{"b@45", "a@59", "b@75", "a@79"});
}

TEST_CASE("The grid is anchored to the clock, not to when a device was added", "[snmp][schedule]") {
  // A restart (a new schedule, later) keeps every device's phase.
  SnmpSchedule s;
  s.set("a", 10 * kS, 123 * kS, "");
  CHECK(s.next_due() == 128'190'756'429);
}

TEST_CASE("A device that fell behind polls once and skips the grid points it missed", "[snmp][schedule]") {
  SnmpSchedule s;
  s.set("a", 10 * kS, 0, "");
  CHECK(s.advance(35 * kS).empty());
  CHECK(s.next_due() == 38'190'756'429);
  CHECK(s.start_next() == "a");
  CHECK_FALSE(s.start_next());
}

TEST_CASE("The in-flight cap queues due devices, first come first served", "[snmp][schedule]") {
  SnmpSchedule s;
  s.set_max_inflight(2);
  for (const char* k : {"a", "b", "c", "d"}) s.set(k, 10 * kS, 0, "");
  s.advance(8 * kS);  // b, d, c are due, in that order
  CHECK(s.start_next() == "b");
  CHECK(s.start_next() == "d");
  CHECK_FALSE(s.start_next());
  CHECK(s.in_flight() == 2);
  CHECK(s.waiting() == 1);
  s.advance(9 * kS);  // a is due after c: it waits behind it
  CHECK(s.waiting() == 2);
  s.finished("d");
  CHECK(s.start_next() == "c");
  CHECK_FALSE(s.start_next());
  s.finished("b");
  CHECK(s.start_next() == "a");
  // b and d, whose polls ended, are queued again; c and a, still polling a whole interval later,
  // miss a poll rather than start a second one.
  CHECK(s.advance(17 * kS).empty());
  CHECK(s.waiting() == 2);
  CHECK(s.advance(18 * kS) == std::vector<std::string>{"c"});
  CHECK(s.advance(19 * kS) == std::vector<std::string>{"a"});
}

TEST_CASE("Polls of one v3 user on one agent never overlap; others pass them", "[snmp][schedule]") {
  SnmpSchedule s;
  s.set("a", 10 * kS, 0, "u@g:161");
  s.set("b", 10 * kS, 0, "u@h:161");
  s.set("c", 10 * kS, 0, "u@h:161");
  s.advance(9 * kS);  // b, c, a
  CHECK(s.start_next() == "b");
  CHECK(s.start_next() == "a");  // c waits for b, a does not
  CHECK_FALSE(s.start_next());
  s.finished("b");
  CHECK(s.start_next() == "c");
  s.remove("c");  // removing a device in flight frees its place
  CHECK(s.in_flight() == 1);
}

TEST_CASE("poll_now queues a device at once unless it is polling or waiting; its grid stays",
          "[snmp][schedule]") {
  SnmpSchedule s;
  s.set("a", 60 * kS, 0, "");
  const auto due = s.next_due();
  s.poll_now("a");
  s.poll_now("a");       // already waiting: once
  s.poll_now("nobody");  // unknown: ignored
  CHECK(s.waiting() == 1);
  CHECK(s.start_next() == "a");
  CHECK_FALSE(s.start_next());
  s.poll_now("a");  // polling: nothing more
  CHECK(s.waiting() == 0);
  s.finished("a");
  CHECK(s.next_due() == due);
}

TEST_CASE("Row nodes recycled from a poll carry nothing of it into the next", "[snmp][request]") {
  SnmpRowPool pool;
  Fixture f;
  f.req.use_pool(&pool);
  f.send();
  f.receive(reply({{row(kCol, 1), 5}, {row(kCol, 2), 6}, {row(kCol, 3), 7}, {{1, 3, 6, 1, 4, 1, 9, 3}, 0}}));
  REQUIRE(f.req.next() == Next::Done);
  f.req.recycle(pool);
  CHECK(pool.nodes.size() == 3);
  CHECK(f.req.data().columns.at(kCol).empty());
  // The next poll takes those nodes: one row fewer, other indexes and values, an endOfMibView.
  SnmpRequest next("2c", 100, f.agent, f.state, kDeadline);
  next.use_pool(&pool);
  next.plan({}, {&kWalked});
  Pdu bulk(next.make_pdu(), &snmp_free_pdu);
  next.on_sent(true);
  next.on_callback(NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE,
                   reply({{row(kCol, 4), 40}, {row(kCol, 9), 90}}).get());
  REQUIRE(next.next() == Next::Send);
  Pdu more(next.make_pdu(), &snmp_free_pdu);
  next.on_sent(true);
  next.on_callback(NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE, reply({{row(kCol, 10), -1}}).get());
  REQUIRE(next.next() == Next::Done);
  CHECK(pool.nodes.size() == 1);  // two taken
  const auto& rows = next.data().columns.at(kCol);
  REQUIRE(rows.size() == 2);
  CHECK(rows.at({4}).i == 40);
  CHECK(rows.at({4}).type == SnmpVal::T::Int);
  CHECK(rows.at({9}).i == 90);
  CHECK(rows.count({1}) == 0);
}

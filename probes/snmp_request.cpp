#include "probes/snmp_request.h"

#include <algorithm>

#include "probes/snmp_mib.h"

namespace siteprobe::probes {

SnmpVal to_val(const netsnmp_variable_list* v) {
  SnmpVal r;
  to_val(v, r);
  return r;
}

void to_val(const netsnmp_variable_list* v, SnmpVal& r) {
  r.i = 0;
  r.u = 0;
  r.s.clear();
  switch (v->type) {
    case ASN_INTEGER:
      r.type = SnmpVal::T::Int;
      r.i = *v->val.integer;
      break;
    case ASN_COUNTER:
    case ASN_GAUGE:
    case ASN_TIMETICKS:
      r.type = v->type == ASN_COUNTER ? SnmpVal::T::Counter32
               : v->type == ASN_GAUGE ? SnmpVal::T::Unsigned
                                      : SnmpVal::T::Ticks;
      r.u = static_cast<std::uint32_t>(*v->val.integer);
      break;
    case ASN_COUNTER64:
      r.type = SnmpVal::T::Counter64;
      r.u =
          (static_cast<std::uint64_t>(v->val.counter64->high) << 32) | (v->val.counter64->low & 0xffffffffu);
      break;
    case ASN_OCTET_STR:  // no use for more: every string is clipped further where it is used
      r.type = SnmpVal::T::String;
      r.s.assign(reinterpret_cast<const char*>(v->val.string), std::min(v->val_len, kMaxValueBytes));
      break;
    case ASN_OBJECT_ID: {
      r.type = SnmpVal::T::ObjectId;
      const std::size_t n = v->val_len / sizeof(oid);
      for (std::size_t i = 0; i < n; ++i) r.s += (i ? "." : "") + std::to_string(v->val.objid[i]);
      break;
    }
    case SNMP_NOSUCHOBJECT:
    case SNMP_NOSUCHINSTANCE:
    case SNMP_ENDOFMIBVIEW:
      r.type = SnmpVal::T::Missing;
      break;
    default:
      r.type = SnmpVal::T::Other;
  }
}

Oid to_oid(const oid* o, std::size_t n) {
  Oid r(n);
  for (std::size_t i = 0; i < n; ++i) r[i] = static_cast<std::uint32_t>(o[i]);
  return r;
}

SnmpRequest::SnmpRequest(std::string version, int max_interfaces, SnmpAgent& agent, SnmpDeviceState& state,
                         std::int64_t deadline_ns)
    : version_(std::move(version)),
      max_interfaces_(max_interfaces),
      agent_(agent),
      state_(state),
      deadline_ns_(deadline_ns) {}

void SnmpRequest::plan(const std::vector<std::string>& modules,
                       const std::vector<const SnmpObject*>& custom) {
  bool interfaces = false;
  for (const auto& m : modules) {
    if (m == "system") scalars_.insert(scalars_.end(), {kSysUpTime, kSysName, kSysDescr, kSysObjectID});
    interfaces |= m == "interfaces";
  }
  if (interfaces) {
    // The IF-MIB columns: names, 64-bit counters (not in v1), status and errors, 32-bit counters.
    static const std::vector<Oid> kCols[4] = {
        {col(kIfXTable, kIfName), col(kIfXTable, kIfAlias)},
        {col(kIfXTable, kIfHCInOctets), col(kIfXTable, kIfHCOutOctets), col(kIfXTable, kIfHCInUcast),
         col(kIfXTable, kIfHCOutUcast), col(kIfXTable, kIfHighSpeed)},
        {col(kIfTable, kIfAdmin), col(kIfTable, kIfOper), col(kIfTable, kIfInErrors),
         col(kIfTable, kIfOutErrors), col(kIfTable, kIfInDiscards), col(kIfTable, kIfOutDiscards)},
        {col(kIfTable, kIfDescr), col(kIfTable, kIfSpeed), col(kIfTable, kIfInOctets),
         col(kIfTable, kIfOutOctets), col(kIfTable, kIfInUcast), col(kIfTable, kIfOutUcast)}};
    const bool v1 = version_ == "1";
    for (int k = 0; k < 4; ++k)
      if ((k != 1 || !v1) && (k != 3 || v1 || agent_.need32))
        for (const auto& c : kCols[k]) cols_.push_back({c, c});
  }
  for (const SnmpObject* o : custom) {
    if (o->walk)
      cols_.push_back({o->oid, o->oid});
    else
      scalars_.push_back(o->oid);
  }
  std::sort(scalars_.begin(), scalars_.end());
  scalars_.erase(std::unique(scalars_.begin(), scalars_.end()), scalars_.end());
  // With columns to walk (v2c, v3), the scalars of instance .0 that come before every column ride
  // in the first GETBULK as its non-repeaters (GETNEXT of the object is its instance .0): one
  // request and reply per poll fewer, for the poller and for the agent. Others (a table cell named
  // as a scalar, or one past a column) keep their GET. Being before the columns is what shows an
  // agent that wrongly repeats them (walk_reply).
  if (version_ != "1" && !cols_.empty() && !agent_.no_fold) {
    const Oid& first = std::min_element(cols_.begin(), cols_.end(), [](const Column& a, const Column& b) {
                         return a.base < b.base;
                       })->base;
    const auto foldable = [&](const Oid& o) { return o.size() > 1 && o.back() == 0 && o < first; };
    for (const auto& o : scalars_)
      if (foldable(o)) folded_.emplace_back(o.begin(), o.end() - 1);
    scalars_.erase(std::remove_if(scalars_.begin(), scalars_.end(), foldable), scalars_.end());
  }
  step_ = version_ == "3" && agent_.engine_id.empty() ? Step::Discover
          : !scalars_.empty()                         ? Step::Get
          : !cols_.empty()                            ? Step::Walk
                                                      : Step::Done;
  next_ = step_ == Step::Done ? Next::Done : Next::Send;
}

netsnmp_pdu* SnmpRequest::make_pdu() {
  const auto add_null = [](netsnmp_pdu* pdu, const Oid& o) {
    std::vector<oid> x(o.begin(), o.end());
    return snmp_add_null_var(pdu, x.data(), x.size()) != nullptr;
  };
  netsnmp_pdu* pdu = nullptr;
  bool ok = true;
  if (step_ == Step::Discover) {
    pdu = snmp_pdu_create(SNMP_MSG_GET);
    if (pdu) {
      pdu->version = SNMP_VERSION_3;
      pdu->securityName = strdup("");
      ok = pdu->securityName != nullptr;
      pdu->securityNameLen = 0;
      pdu->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
      pdu->securityModel = SNMP_SEC_MODEL_USM;
    }
  } else if (step_ == Step::Get) {
    pdu = snmp_pdu_create(SNMP_MSG_GET);
    for (const auto& o : scalars_) ok = ok && pdu && add_null(pdu, o);
  } else {
    const bool v1 = version_ == "1";
    pdu = snmp_pdu_create(v1 ? SNMP_MSG_GETNEXT : SNMP_MSG_GETBULK);
    if (pdu && !v1) {
      // Its first GETBULK asks for one row more than the agent had last time, enough to see each
      // column end: a 4-port router is not asked for (and does not encode) 10 rows of 13 columns.
      max_rep_ = agent_.max_rep;
      if (!walking_ && agent_.rows > 0) max_rep_ = std::min(max_rep_, agent_.rows + 1);
      pdu->errstat = static_cast<long>(folded_.size());  // non-repeaters
      pdu->errindex = max_rep_;                          // max-repetitions
    }
    for (const auto& o : folded_) ok = ok && pdu && add_null(pdu, o);
    for (const auto& c : cols_)
      if (!c.done) ok = ok && pdu && add_null(pdu, c.cur);
  }
  if (pdu && !ok) {
    snmp_free_pdu(pdu);
    pdu = nullptr;
  }
  next_ = Next::Wait;
  reqid = pdu ? pdu->reqid : 0;
  return pdu;
}

void SnmpRequest::on_callback(int op, netsnmp_pdu* pdu) {
  if (op == NETSNMP_CALLBACK_OP_RESEND) {
    ++sent_;
    return;
  }
  if (op == NETSNMP_CALLBACK_OP_TIMED_OUT) {
    if (step_ == Step::Walk && agent_.max_rep > 1) agent_.max_rep = std::max(1, agent_.max_rep / 2);
    return fail("timeout");
  }
  if (op != NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE || !pdu) return fail("send");
  ++received_;
  if (pdu->command == SNMP_MSG_REPORT) {
    if (step_ == Step::Discover && pdu->securityEngineIDLen > 0) {
      agent_.engine_id.assign(reinterpret_cast<const char*>(pdu->securityEngineID), pdu->securityEngineIDLen);
      rekey_ = true;
      step_ = !scalars_.empty() ? Step::Get : !cols_.empty() ? Step::Walk : Step::Done;
      next_ = step_ == Step::Done ? Next::Done : Next::Send;
      return;
    }
    const int type = snmpv3_get_report_type(pdu);
    if (type == SNMPERR_NOT_IN_TIME_WINDOW && !resent_time_) {  // engine time now synced: once more
      resent_time_ = true;
      next_ = Next::Send;
      return;
    }
    if (type == SNMPERR_UNKNOWN_ENG_ID) agent_.engine_id.clear();  // agent replaced: discover again next time
    return fail("auth");
  }
  if (pdu->errstat == SNMP_ERR_TOOBIG) {
    if (step_ == Step::Walk && agent_.max_rep > 1) {
      agent_.max_rep = std::max(1, agent_.max_rep / 2);
      state_.count_error("too_big");
      next_ = Next::Send;
      return;
    }
    return fail("too_big");
  }
  if (pdu->errstat == SNMP_ERR_NOSUCHNAME && pdu->errindex > 0) {  // v1: drop that varbind, ask again
    state_.count_error("no_such_name");
    if (step_ == Step::Get) {
      const auto i = static_cast<std::size_t>(pdu->errindex - 1);
      if (i >= scalars_.size()) return fail("decode");
      scalars_.erase(scalars_.begin() + static_cast<long>(i));
      if (scalars_.empty()) step_ = cols_.empty() ? Step::Done : Step::Walk;
    } else {
      std::size_t k = 0;
      for (auto& c : cols_)
        if (!c.done && ++k == static_cast<std::size_t>(pdu->errindex)) c.done = true;
      if (std::all_of(cols_.begin(), cols_.end(), [](const Column& c) { return c.done; })) step_ = Step::Done;
    }
    next_ = step_ == Step::Done ? Next::Done : Next::Send;
    return;
  }
  if (pdu->errstat != SNMP_ERR_NOERROR) return fail("error_status");
  if (step_ == Step::Get) {
    // Exactly what was asked: one varbind per scalar, by name. Anything else is not kept.
    std::size_t missing = 0, n = 0;
    for (auto* v = pdu->variables; v; v = v->next_variable)
      if (++n > scalars_.size()) return fail("oversized");
    for (auto* v = pdu->variables; v; v = v->next_variable) {
      Oid o = to_oid(v->name, v->name_length);
      if (!std::binary_search(scalars_.begin(), scalars_.end(), o)) return fail("decode");
      if (!keep_scalar(std::move(o), v, missing)) return fail("oversized");
    }
    if (missing) state_.count_error("no_such_name", missing);
    step_ = cols_.empty() ? Step::Done : Step::Walk;
    next_ = step_ == Step::Done ? Next::Done : Next::Send;
    return;
  }
  if (step_ == Step::Walk) return walk_reply(pdu);
  fail("decode");
}

bool SnmpRequest::keep_scalar(Oid o, const netsnmp_variable_list* v, std::size_t& missing) {
  if (!count_bytes(v)) return false;
  SnmpVal val = to_val(v);
  missing += val.type == SnmpVal::T::Missing;
  data_.scalars[std::move(o)] = std::move(val);
  return true;
}

namespace {

// A varbind's name as net-snmp holds it, compared with siteprobe's OIDs without copying it.
struct OidView {
  const oid* p;
  std::size_t n;
  // <0, 0, >0: lexicographic order, as agents order OIDs.
  int compare(const Oid& b) const {
    const std::size_t k = std::min(n, b.size());
    for (std::size_t i = 0; i < k; ++i)
      if (p[i] != b[i]) return p[i] < b[i] ? -1 : 1;
    return n < b.size() ? -1 : n > b.size() ? 1 : 0;
  }
  // Strictly under `base`: base followed by at least one more arc.
  bool below(const Oid& base) const { return n > base.size() && std::equal(base.begin(), base.end(), p); }
};

}  // namespace

bool SnmpRequest::take_folded(netsnmp_pdu* pdu) {
  std::size_t missing = 0;
  const netsnmp_variable_list* v = pdu->variables;  // at least folded_.size() of them
  for (const auto& base : folded_) {
    Oid o = base;
    o.push_back(0);
    // The next OID after the object is its instance .0, else the agent has none: it is missing.
    if (v->name_length == o.size() && std::equal(o.begin(), o.end(), v->name)) {
      if (!keep_scalar(std::move(o), v, missing)) return false;
    } else {
      ++missing;
      data_.scalars[std::move(o)] = SnmpVal{};
    }
    v = v->next_variable;
  }
  if (missing) state_.count_error("no_such_name", missing);
  return true;
}

void SnmpRequest::unfold() {
  agent_.no_fold = true;
  for (auto& o : folded_) {
    o.push_back(0);
    scalars_.push_back(std::move(o));
  }
  folded_.clear();
  std::sort(scalars_.begin(), scalars_.end());
  for (auto& c : cols_) c = {c.base, c.base};  // the walk starts over after the GET
  data_.columns.clear();
  walking_ = false;
  step_ = Step::Get;
  next_ = Next::Send;
}

void SnmpRequest::walk_reply(netsnmp_pdu* pdu) {
  std::vector<Column*> active;
  for (auto& c : cols_)
    if (!c.done) active.push_back(&c);
  // At most what was asked: the non-repeaters, then max-repetitions rows of each active column
  // (one row for GETNEXT). An agent that repeats the non-repeaters too answers more than that, or
  // (cut short to fit its message size) puts a scalar where a column's next row belongs: it gets
  // the scalars by GET from then on.
  const std::size_t nonrep = folded_.size();
  const std::size_t asked =
      nonrep + active.size() * (version_ == "1" ? 1 : static_cast<std::size_t>(max_rep_));
  std::size_t n = 0;
  for (auto* v = pdu->variables; v; v = v->next_variable)
    if (++n > asked) return nonrep ? unfold() : fail("oversized");
  // Fewer than the non-repeaters is not a GETBULK reply; no row would never end the walk.
  if (n <= nonrep) return fail("decode");
  if (!take_folded(pdu)) return fail("oversized");
  netsnmp_variable_list* v = pdu->variables;
  for (std::size_t k = 0; k < nonrep; ++k) v = v->next_variable;
  for (std::size_t i = 0; v; v = v->next_variable, ++i) {
    Column& c = *active[i % active.size()];
    const OidView o{v->name, v->name_length};
    if (nonrep && o.compare(c.base) < 0) return unfold();  // never before what was asked
    if (c.done) continue;
    if (v->type == SNMP_ENDOFMIBVIEW || !o.below(c.base)) {
      c.done = true;
      continue;
    }
    if (o.compare(c.cur) <= 0) {  // an agent that does not advance would loop forever
      c.done = true;
      state_.count_error("not_increasing");
      continue;
    }
    c.cur.assign(o.p, o.p + o.n);
    if (!count_bytes(v)) return fail("oversized");
    if (!c.rows) c.rows = &data_.columns[c.base];
    auto& rows = *c.rows;
    if (pool_ && !pool_->nodes.empty()) {  // a row node of an earlier poll: no allocation
      auto node = std::move(pool_->nodes.back());
      pool_->nodes.pop_back();
      node.key().assign(o.p + c.base.size(), o.p + o.n);
      to_val(v, node.mapped());
      rows.insert(std::move(node));  // a new index: OIDs increase within a column (checked above)
    } else {
      rows[Oid(o.p + c.base.size(), o.p + o.n)] = to_val(v);
    }
    if (rows.size() > static_cast<std::size_t>(max_interfaces_)) return fail("too_many_rows");
  }
  folded_.clear();
  walking_ = true;
  const bool all = std::all_of(cols_.begin(), cols_.end(), [](const Column& c) { return c.done; });
  next_ = all ? Next::Done : Next::Send;
  if (!all) return;
  step_ = Step::Done;
  agent_.rows = 0;
  for (const auto& [base, rows] : data_.columns)
    agent_.rows = std::max(agent_.rows, static_cast<int>(rows.size()));
}

bool SnmpRequest::count_bytes(const netsnmp_variable_list* v) {
  bytes_ += std::min(v->val_len, kMaxValueBytes) + 8;
  const auto scale = static_cast<std::size_t>(std::max(1, max_interfaces_ / 1024));
  return bytes_ <= kMaxPollBytes * scale;
}

void SnmpRequest::recycle(SnmpRowPool& pool) {
  for (auto& [base, rows] : data_.columns)
    while (!rows.empty() && pool.nodes.size() < SnmpRowPool::kMax)
      pool.nodes.push_back(rows.extract(rows.begin()));
}

}  // namespace siteprobe::probes

// SNMP exposition: each device's text, rendered once per poll by the loop thread, and the
// Exposition that /metrics renders from them (any thread) under the families' HELP and TYPE.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "probes/probe.h"
#include "probes/snmp.h"

namespace siteprobe::probes {

class SnmpExposition final : public Exposition {
 public:
  using Text = SnmpText;
  // Drops a device's text (by target key).
  void drop(const std::string& key);
  // Replaces key's text with what `fill` appends to an empty one. Filled in place when no scrape
  // holds the current text (its map nodes and strings keep their capacity: a new map per poll was
  // a tenth of the CPU per poll), else into a new one. Families left empty are dropped.
  void render(const std::string& key, const std::function<void(Text&)>& fill);
  // Custom families (name -> type, help), replaced on reload.
  void set_custom(std::map<std::string, std::pair<std::string, std::string>> c);
  void set_load(int in_flight, std::size_t waiting, std::size_t kept) {
    in_flight_ = in_flight;
    waiting_ = waiting;
    kept_ = kept;
  }
  Parts parts() const override;

 private:
  std::atomic<int> in_flight_{0};
  std::atomic<std::size_t> waiting_{0}, kept_{0};
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Text>> by_key_;  // shared with scrapes as const
  std::shared_ptr<const std::map<std::string, std::pair<std::string, std::string>>> custom_;
};

}  // namespace siteprobe::probes

// Every metric family siteprobe exports by itself, with its type and help, in one table
// (families.cpp), and the label names it sets. Renderers take HELP and TYPE from here, and the
// inventory validator reserves these names, so a custom SNMP object or label can never collide with
// a built-in one: adding a family here reserves it the day it is added.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace siteprobe {

struct Family {
  std::string_view name, type, help;
};

// Sorted by name.
const std::vector<Family>& families();
// The family of that name, or nullptr.
const Family* find_family(std::string_view name);
// The family of that name; std::logic_error if the table lacks it (a programming error that the
// unit and scrape tests catch).
const Family& family(std::string_view name);
const char* help(std::string_view name);
// Label names siteprobe sets on its own series; inventory labels may not use them.
const std::set<std::string>& reserved_labels();

}  // namespace siteprobe

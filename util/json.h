// A small JSON reader for the Prometheus HTTP API's answers (`siteprobe report`): the whole text
// into a tree, or an error with the byte offset. Malformed input (bad syntax, invalid UTF-8 in a
// string, nesting deeper than 64, trailing bytes) is an error, never a crash. Numbers are kept as
// their text (Prometheus sends sample values as strings anyway). Pure; any thread.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace siteprobe::json {

struct Value {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  std::string text;  // String: the decoded string; Number: the number as written
  std::vector<Value> items;
  std::map<std::string, Value> members;  // a repeated key keeps its last value

  bool is(Type t) const { return type == t; }
  // The member `key` of an object, or null if this is no object or has no such member.
  const Value* get(const std::string& key) const;
};

// Parses `s`; on failure returns false and sets `err` ("offset N: what").
bool parse(std::string_view s, Value& out, std::string& err);

}  // namespace siteprobe::json

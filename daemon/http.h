// The HTTP endpoint: /metrics, /-/healthy, /-/ready, served by CivetWeb worker threads.
//
// Threading: handlers run on CivetWeb threads and touch only the registry (thread-safe in
// prometheus-cpp) and the atomic ready flag. start()/stop() are called from the loop thread.
#pragma once

#include <prometheus/registry.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "probes/series.h"

struct mg_context;

namespace siteprobe {

class HttpServer {
 public:
  HttpServer(std::shared_ptr<prometheus::Registry> registry, const std::atomic<bool>& ready)
      : registry_(std::move(registry)), ready_(ready) {}
  ~HttpServer() { stop(); }
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Adds series to /metrics; only before start().
  void add(std::shared_ptr<const probes::Exposition> e) { expositions_.push_back(std::move(e)); }
  // Binds `listen` ("HOST:PORT", "[V6]:PORT" or ":PORT"); returns "" or an error message.
  std::string start(const std::string& listen);
  void stop();
  // The text exposition of every metric in the registry.
  std::string render() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::shared_ptr<const probes::Exposition>> expositions_;
  const std::atomic<bool>& ready_;
  mg_context* ctx_ = nullptr;
};

}  // namespace siteprobe

// The HTTP endpoint: /metrics, /-/healthy, /-/ready, served by CivetWeb worker threads.
//
// Threading: handlers run on CivetWeb threads and touch only the registry (thread-safe in
// prometheus-cpp) and the atomic ready flag. start()/stop() are called from the loop thread.
#pragma once

#include <prometheus/registry.h>

#include <atomic>
#include <functional>
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
  // Serves `uri` as plain text from `page` (status code, body); only before start(). `page` runs
  // on HTTP threads.
  using Page = std::function<std::pair<int, std::string>()>;
  void add_page(const std::string& uri, Page page) {
    pages_.push_back(std::make_unique<std::pair<std::string, Page>>(uri, std::move(page)));
  }
  // Binds `listen` ("HOST:PORT", "[V6]:PORT" or ":PORT"); returns "" or an error message.
  std::string start(const std::string& listen);
  void stop();
  // The text exposition of every metric in the registry.
  std::string render() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<std::shared_ptr<const probes::Exposition>> expositions_;
  std::vector<std::unique_ptr<std::pair<std::string, Page>>> pages_;
  const std::atomic<bool>& ready_;
  mg_context* ctx_ = nullptr;
};

}  // namespace siteprobe

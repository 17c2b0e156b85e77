// Routing keys and replica bindings follow the django-cqrs topology exactly.
#include "common/topology.hpp"

#include <doctest/doctest.h>

#include "master/publish_target.hpp"
#include "replica/bindings.hpp"

using namespace pgcqrs;

TEST_CASE("routing keys of the django-cqrs topology") {
  CHECK(topology::broadcast_key("author") == "author");
  CHECK(topology::queue_key("replica", "author") == "cqrs.replica.author");
  CHECK(topology::default_dead_letter_queue("replica") == "dead_letter_replica");
  CHECK(master::routing_key("author", std::nullopt) == "author");
  CHECK(master::routing_key("author", std::string("None")) == "author");
  CHECK(master::routing_key("author", std::string("replica")) == "cqrs.replica.author");
}

TEST_CASE("replica bindings: two keys on the queue and one on the dead-letter queue per id") {
  const auto b =
      replica::replica_bindings("replica", "dead_letter_replica", {"product", "author", "product"});
  REQUIRE(b.size() == 6);
  CHECK(b[0] == replica::Binding{"replica", "author"});
  CHECK(b[1] == replica::Binding{"replica", "cqrs.replica.author"});
  CHECK(b[2] == replica::Binding{"dead_letter_replica", "cqrs.dead_letter_replica.author"});
  CHECK(b[3] == replica::Binding{"replica", "product"});
}

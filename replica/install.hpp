// `pgcqrs migrate` on a replica database: schema cqrs, and the check of every model's table.
#pragma once

#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/pg/migrations.hpp"
#include "common/pg/pqxx.hpp"
#include "replica/batch.hpp"

namespace pgcqrs::replica {

struct InstallReport {
  std::vector<std::string> migrations;  // applied (dry run: pending) migration files
  std::vector<std::string> models;      // cqrs_ids whose table (or function) was checked
  std::vector<std::string> ddl;         // what ran (dry run: would run), in order
};

// Applies pending replica migrations and checks every model (load_targets()), in one
// transaction: a model that does not fit leaves the database unchanged. Idempotent. With
// dry_run nothing is changed and the report lists what would run.
// Throws ConfigError (see load_targets()).
InstallReport install_replica(pqxx::connection& conn, const ReplicaConfig& config, bool dry_run);

// Reads every model's table from the catalog and checks that events can be applied to it:
// the table exists and is a table, has a single-column primary key, columns cqrs_revision
// (smallint, integer or bigint) and cqrs_updated, and every column the mapping names; for an
// apply_function model, that fn(text, jsonb, jsonb, jsonb) exists (its table is not read).
// Throws one ConfigError listing every problem, a line each, naming model, table, column and
// the fix:
//   replica.model 'author' ("reads"."author"): column "cqrs_revision" missing; add it: ALTER
//   TABLE "reads"."author" ADD COLUMN cqrs_revision integer NOT NULL DEFAULT 0
std::vector<Target> load_targets(pqxx::transaction_base& txn, const ReplicaConfig& config);

// Throws ConfigError when the replica migrations are not all applied (cqrs.tombstone missing
// or older): the consumer must not start on such a database.
void require_schema(pqxx::transaction_base& txn);

// migrations/replica/*.sql, compiled in (cmake/EmbedMigrations.cmake).
const std::vector<pg::Migration>& migrations();

}  // namespace pgcqrs::replica

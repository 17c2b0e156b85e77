// Installing the replica schema and checking that every model's table can take events.
#include "replica/install.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace pgcqrs::replica {
namespace {

constexpr const char* kComponent = "replica";

bool is_integer_type(const std::string& base_type) {
  return base_type == "int2" || base_type == "int4" || base_type == "int8";
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

// The problems of one table-backed model; empty when it fits.
std::vector<std::string> check_table(const ReplicaModel& m, const TableLookup& found) {
  const std::string table = quoted(m.table);
  if (!found.found) {
    return {
        "table not found in the replica database; create it first or fix the model's "
        "table key (mixed case needs quotes: 'public.\"Name\"')"};
  }
  if (found.relkind != "r" && found.relkind != "p") {
    return {"is not a table (relkind '" + found.relkind +
            "'); only tables and partitioned tables can be written"};
  }
  std::vector<std::string> problems;
  const TableInfo& info = found.info;
  if (found.key_columns.empty()) {
    problems.push_back("has no primary key; rows are matched by it: add one, e.g. ALTER TABLE " +
                       table + " ADD PRIMARY KEY (id)");
  } else if (found.key_columns.size() > 1) {
    std::vector<std::string> names;
    for (const auto& c : found.key_columns)
      names.push_back(quote_identifier(c));
    problems.push_back("has a composite primary key (" + join(names, ", ") +
                       "); django-cqrs events carry one key value: use a single-column key");
  } else if (info.column(info.primary_key) == nullptr) {
    problems.push_back("primary key column " + quote_identifier(info.primary_key) +
                       " is generated; events write the key: use a plain column");
  }
  if (const Column* rev = info.column("cqrs_revision")) {
    if (!is_integer_type(rev->base_type)) {
      problems.push_back("column \"cqrs_revision\" is " + rev->type +
                         "; it must be smallint, integer or bigint");
    }
  } else {
    problems.push_back("column \"cqrs_revision\" missing; add it: ALTER TABLE " + table +
                       " ADD COLUMN cqrs_revision integer NOT NULL DEFAULT 0");
  }
  if (info.column("cqrs_updated") == nullptr) {
    problems.push_back("column \"cqrs_updated\" missing; add it: ALTER TABLE " + table +
                       " ADD COLUMN cqrs_updated timestamptz NOT NULL DEFAULT now()");
  }
  for (const auto& [from, to] : m.mapping) {
    std::string problem;
    if (to == "cqrs_revision" || to == "cqrs_updated") {
      problem.append("mapping.").append(from).append(" = \"").append(to).append("\": ");
      problem.append(to).append(" always comes from the event's own key; remove this mapping");
    } else if (info.column(to) == nullptr) {
      problem.append("column ").append(quote_identifier(to)).append(" missing (mapping.");
      problem.append(from).append(" = \"").append(to).append("\"); add it or fix the mapping");
    }
    if (!problem.empty()) problems.push_back(std::move(problem));
  }
  return problems;
}

std::vector<std::string> check_function(pqxx::transaction_base& txn, const ReplicaModel& m) {
  QualifiedName fn;
  try {
    fn = parse_qualified_name(*m.apply_function);
  } catch (const ConfigError& e) {
    return {std::string("apply_function: ") + e.what()};
  }
  const std::string signature = quoted(fn) + "(text, jsonb, jsonb, jsonb)";
  if (txn.exec_params1("SELECT to_regprocedure($1) IS NOT NULL", signature)[0].as<bool>()) {
    return {};
  }
  return {"apply_function " + signature + " not found; create it: CREATE FUNCTION " + quoted(fn) +
          "(signal text, data jsonb, previous_data jsonb, meta jsonb) RETURNS void ..."};
}

}  // namespace

std::vector<Target> load_targets(pqxx::transaction_base& txn, const ReplicaConfig& config) {
  std::vector<Target> targets;
  std::vector<std::string> problems;
  for (const auto& m : config.models) {
    Target t{m, {}};
    t.table.table = m.table;
    std::vector<std::string> found;
    if (m.apply_function) {
      found = check_function(txn, m);
    } else {
      TableLookup lookup = lookup_table(txn, m.table);
      found = check_table(m, lookup);
      t.table = std::move(lookup.info);
    }
    for (const auto& p : found) {
      problems.push_back("replica.model '" + m.cqrs_id + "' (" + quoted(m.table) + "): " + p);
    }
    targets.push_back(std::move(t));
  }
  if (!problems.empty()) throw ConfigError(join(problems, "\n"));
  return targets;
}

void require_schema(pqxx::transaction_base& txn) {
  const auto pending = pg::pending_migrations(txn, kComponent, migrations());
  if (pending.empty()) return;
  std::vector<std::string> names;
  names.reserve(pending.size());
  for (const auto& m : pending)
    names.emplace_back(m.name);
  throw ConfigError("replica database: schema cqrs is not up to date (pending " +
                    join(names, ", ") + "); run `pgcqrs migrate` first");
}

InstallReport install_replica(pqxx::connection& conn, const ReplicaConfig& config, bool dry_run) {
  InstallReport report;
  pqxx::work txn(conn, "pgcqrs replica install");
  if (dry_run) {
    for (const auto& m : pg::pending_migrations(txn, kComponent, migrations())) {
      report.migrations.emplace_back(m.name);
      report.ddl.push_back("-- migration " + std::string(m.name) + "\n" + std::string(m.sql));
    }
  } else {
    report.migrations = pg::apply_migrations(txn, kComponent, migrations());
    for (const auto& m : migrations()) {
      if (std::find(report.migrations.begin(), report.migrations.end(), m.name) !=
          report.migrations.end()) {
        report.ddl.push_back("-- migration " + std::string(m.name) + "\n" + std::string(m.sql));
      }
    }
  }
  for (const auto& t : load_targets(txn, config))
    report.models.push_back(t.model.cqrs_id);
  if (dry_run) {
    txn.abort();
  } else {
    txn.commit();
  }
  return report;
}

}  // namespace pgcqrs::replica

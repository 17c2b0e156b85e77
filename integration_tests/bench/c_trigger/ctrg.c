/* Benchmark probe only, not part of pgcqrs (which installs no C code: managed PostgreSQL
 * services load none). The least any trigger can pay to write one outbox row per inserted row:
 * a heap tuple of four fixed-width columns through simple_heap_insert(), and with a second
 * argument an entry in a btree on a sequence-numbered id, written by index_insert(): no
 * executor, no SPI, no plpgsql, no JSON. AFTER INSERT ... FOR EACH ROW EXECUTE FUNCTION
 * bench.ctrg('<outbox table>' [, '<its index>']) on a table of the bench.t_plain shape.
 * Built by integration_tests/bench/master_run.sh for the variants ctrgh and ctrgi
 * (docs/benchmarks.md); needs the PostgreSQL server headers (postgresql-server-dev-15). */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "nodes/execnodes.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

PG_MODULE_MAGIC;
PG_FUNCTION_INFO_V1(ctrg);

Datum ctrg(PG_FUNCTION_ARGS) {
  TriggerData *td = (TriggerData *)fcinfo->context;
  Oid ns = get_namespace_oid("bench", false);
  bool with_index = td->tg_trigger->tgnargs > 1;
  Relation rel = table_open(get_relname_relid(td->tg_trigger->tgargs[0], ns), RowExclusiveLock);
  Datum values[4];
  bool nulls[4] = {false, false, false, false};
  bool isnull;
  HeapTuple tup;

  values[0] =
      Int64GetDatum(with_index ? nextval_internal(get_relname_relid("outbox_c_seq", ns), false) : 0);
  values[1] = heap_getattr(td->tg_trigtuple, 1, td->tg_relation->rd_att, &isnull); /* id */
  values[2] = heap_getattr(td->tg_trigtuple, 7, td->tg_relation->rd_att, &isnull); /* revision */
  values[3] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
  tup = heap_form_tuple(RelationGetDescr(rel), values, nulls);
  simple_heap_insert(rel, tup);
  if (with_index) {
    Relation idx = index_open(get_relname_relid(td->tg_trigger->tgargs[1], ns), RowExclusiveLock);
    IndexInfo *ii = BuildIndexInfo(idx);
    Datum iv[1] = {values[0]};
    bool in[1] = {false};
    index_insert(idx, iv, in, &tup->t_self, rel, UNIQUE_CHECK_NO, false, ii);
    index_close(idx, NoLock);
  }
  heap_freetuple(tup);
  table_close(rel, NoLock);
  return PointerGetDatum(NULL);
}

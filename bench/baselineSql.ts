// The DuckDB-only baseline of the local-runner benchmark: one SQL statement set doing the
// equivalent normalization (Maps to), decile fit on training persons and binning, and a sorted,
// zstd Parquet events file, over the same OMOP folder. Not a product path: a yardstick.
import * as path from 'node:path';
import { DuckDBConnection } from '@duckdb/node-api';
import { CLINICAL_TABLES, EventMapping } from '../schemas/omop';
import { OmopInput, col } from '../sources/omopSource';
import { sqlString } from '../common/sql';


export function baselineStatements(input: OmopInput, outDir: string): string[] {
  const parts: string[] = [];
  for (const spec of CLINICAL_TABLES) {
    const ev = spec.events as EventMapping | undefined;
    const t = input.tables.get(spec.table);
    if (!ev || !t) continue;
    const c = (name: string | null | undefined, fallback = 'NULL') => (name && t.columns.has(name) ? `s.${col(t, name)}` : fallback);
    parts.push(`SELECT CAST(${c('person_id')} AS BIGINT) AS person_id,
      coalesce(TRY_CAST(${c(ev.datetimeColumn)} AS TIMESTAMP), CAST(TRY_CAST(${c(ev.dateColumn)} AS DATE) AS TIMESTAMP)) AS time,
      '${ev.eventTable}' AS "table", ${ev.domain} AS domain,
      -- m1 before m2 by coalesce; a join condition on m1 would make DuckDB loop over every pair.
      coalesce(m1.std, m2.std, TRY_CAST(${c(ev.conceptColumn)} AS BIGINT)) AS concept_id,
      TRY_CAST(${c(ev.sourceConceptColumn, '0')} AS BIGINT) AS source_concept_id,
      TRY_CAST(${c(ev.valueColumn)} AS DOUBLE) AS value,
      coalesce(u.concept_code, CAST(${c(ev.unitSourceColumn)} AS VARCHAR)) AS unit,
      TRY_CAST(${c(ev.visitColumn)} AS BIGINT) AS visit_occurrence_id,
      '${spec.table}:' || ${c(ev.idColumn, "'0'")} AS origin
    FROM ${t.relation} s
    LEFT JOIN bl_map m1 ON m1.src = TRY_CAST(${c(ev.conceptColumn)} AS BIGINT)
    LEFT JOIN bl_map m2 ON m2.src = TRY_CAST(${c(ev.sourceConceptColumn, '0')} AS BIGINT)
    LEFT JOIN concept u ON u.concept_id = TRY_CAST(${c(ev.unitConceptColumn, '0')} AS BIGINT) AND u.concept_id <> 0`);
  }
  return [
    `CREATE TEMP TABLE bl_map AS
       SELECT c.concept_id AS src,
              CASE WHEN c.standard_concept = 'S' THEN c.concept_id ELSE min(r.concept_id_2) END AS std
       FROM concept c LEFT JOIN concept_relationship r ON r.concept_id_1 = c.concept_id AND r.relationship_id = 'Maps to'
       GROUP BY c.concept_id, c.standard_concept`,
    `CREATE TEMP TABLE bl_events AS ${parts.join('\nUNION ALL\n')}`,
    `CREATE TEMP TABLE bl_bounds AS
       SELECT concept_id, unit, quantile_cont(value, [0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1]) AS b
       FROM bl_events WHERE "table" = 'measurement' AND value IS NOT NULL AND hash(person_id) % 100 < 79
       GROUP BY ALL HAVING count(*) >= 10`,
    `COPY (SELECT e.*, CASE WHEN b.b IS NOT NULL AND e.value IS NOT NULL
                 THEN greatest(0, least(9, len(list_filter(b.b, x -> x < e.value)) - 1)) END AS decile
           FROM bl_events e LEFT JOIN bl_bounds b ON b.concept_id = e.concept_id AND b.unit IS NOT DISTINCT FROM e.unit
           ORDER BY person_id, time)
     TO ${sqlString(path.join(outDir, 'events.parquet'))} (FORMAT parquet, COMPRESSION zstd)`,
  ];
}

export async function runBaseline(conn: DuckDBConnection, input: OmopInput, outDir: string): Promise<void> {
  for (const s of baselineStatements(input, outDir)) await conn.run(s);
}

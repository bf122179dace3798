// Loads the part of the OMOP vocabulary a dataset needs: the concepts its rows name, everything
// reachable from them through "Maps to", and the unit concepts. A full Athena vocabulary
// (millions of concepts) stays in DuckDB; only this closure becomes a JavaScript index. The trainers
// read a whole vocabulary folder streaming instead (sources/vocabularyFiles.ts).
import { DuckDBConnection } from '@duckdb/node-api';
import { CLINICAL_TABLES, VOCABULARY_TABLES } from '../schemas/omop';
import { q } from '../schemas/sqlChecks';
import { contentHash } from '../transforms/hashing';
import { VocabularyIndex, buildVocabularyIndex } from '../transforms/normalize';
import { queryRows } from './duck';
import { RecordedFile, recordedFiles } from './fileHashes';
import { OmopInput, col } from './omopSource';

export interface ConceptInfo {
  concept_id: number;
  concept_name: string | null;
  domain_id: string | null;
  vocabulary_id: string | null;
  concept_code: string | null;
  standard_concept: string | null;
}

export interface LoadedVocabulary {
  index: VocabularyIndex;
  concepts: Map<number, ConceptInfo>;
  mapsToPairs: number;
}

const MAX_CHAIN = 8;

/** Concept-id columns of the clinical tables that the pipeline reads. */
function conceptColumns(): { table: string; column: string }[] {
  const out: { table: string; column: string }[] = [];
  for (const spec of CLINICAL_TABLES) {
    const ev = spec.events;
    if (!ev) continue;
    for (const c of [ev.conceptColumn, ev.sourceConceptColumn, ev.unitConceptColumn]) if (c) out.push({ table: spec.table, column: c });
  }
  return out;
}

export async function loadVocabulary(conn: DuckDBConnection, input: OmopInput): Promise<LoadedVocabulary> {
  // Straight from the source files, skipping the row checks: a superset of the ids is harmless.
  const used = conceptColumns()
    .filter(({ table, column }) => input.tables.get(table)?.columns.has(column))
    .map(({ table, column }) => {
      const t = input.tables.get(table)!;
      return `SELECT DISTINCT TRY_CAST(CAST(${col(t, column)} AS VARCHAR) AS BIGINT) AS id FROM ${t.relation}`;
    })
    .concat(['SELECT NULL::BIGINT AS id'])
    .join(' UNION ALL ');
  await conn.run(`CREATE OR REPLACE TEMP TABLE medrep_used_ids AS SELECT DISTINCT id FROM (${used}) WHERE id IS NOT NULL AND id <> 0`);
  await conn.run(
    `CREATE OR REPLACE TEMP TABLE medrep_maps_to AS
       SELECT DISTINCT concept_id_1 AS a, concept_id_2 AS b FROM concept_relationship
       WHERE relationship_id = 'Maps to' AND coalesce(invalid_reason, '') = ''`,
  );
  await conn.run(
    `CREATE OR REPLACE TEMP TABLE medrep_reach AS
       WITH RECURSIVE reach(id, depth) AS (
         SELECT id, 0 FROM medrep_used_ids
         UNION
         SELECT m.b, r.depth + 1 FROM reach r JOIN medrep_maps_to m ON m.a = r.id WHERE r.depth < ${MAX_CHAIN}
       ) SELECT DISTINCT id FROM reach`,
  );
  // The index holds vocabulary concept ids as numbers: an id beyond 2^53 (no real vocabulary has
  // one) is left out rather than rounded, so rows naming it count as not in the vocabulary.
  const safe = (c: string) => `${c} BETWEEN ${Number.MIN_SAFE_INTEGER} AND ${Number.MAX_SAFE_INTEGER}`;
  const conceptRows = await queryRows<ConceptInfo & { invalid_reason: string | null }>(
    conn,
    `SELECT CAST(c.concept_id AS DOUBLE) AS concept_id, c.concept_name, c.domain_id, c.vocabulary_id, c.concept_code,
            nullif(c.standard_concept, '') AS standard_concept, nullif(c.invalid_reason, '') AS invalid_reason
       FROM concept c SEMI JOIN medrep_reach r ON r.id = c.concept_id WHERE ${safe('c.concept_id')} ORDER BY c.concept_id`,
  );
  const pairs = await queryRows<{ a: number; b: number }>(
    conn,
    `SELECT CAST(a AS DOUBLE) AS a, CAST(b AS DOUBLE) AS b FROM medrep_maps_to m SEMI JOIN medrep_reach r ON r.id = m.a
      WHERE ${safe('a')} AND ${safe('b')} ORDER BY a, b`,
  );
  const index = buildVocabularyIndex(conceptRows, pairs.map((p) => [p.a, p.b] as [number, number]));
  const concepts = new Map<number, ConceptInfo>();
  for (const c of conceptRows) concepts.set(c.concept_id, c);
  return { index, concepts, mapsToPairs: pairs.length };
}

/**
 * The version of the vocabulary behind the views concept, concept_relationship and
 * concept_ancestor: a hash of their content as typed by the views (empty text and NULL alike), so
 * the same vocabulary read from CSV, Parquet or a DuckDB file has one version. Per table the row
 * count and the sums of each row's MD5 halves, which do not depend on row order.
 */
export async function vocabularyVersion(conn: DuckDBConnection): Promise<string> {
  const tables: Record<string, string[]> = {};
  for (const [name, cols] of Object.entries(VOCABULARY_TABLES)) {
    const row = cols.map((c) => `coalesce(nullif(CAST(${q(c.name)} AS VARCHAR), ''), '')`).join(` || chr(31) || `);
    // One MD5 per row, summed as two 64-bit halves (a HUGEINT sum of 128-bit values could overflow).
    const [r] = await queryRows<{ n: string; lo: string; hi: string }>(
      conn,
      `SELECT CAST(count(*) AS VARCHAR) AS n, CAST(coalesce(sum(CAST(h & 18446744073709551615::UHUGEINT AS HUGEINT)), 0) AS VARCHAR) AS lo,
              CAST(coalesce(sum(CAST(h >> 64 AS HUGEINT)), 0) AS VARCHAR) AS hi
         FROM (SELECT md5_number(${row}) AS h FROM ${q(name)})`,
    );
    tables[name] = [r.n, r.lo, r.hi];
  }
  return contentHash(tables);
}

export interface VocabularyArtifact {
  kind: 'medrep.vocabulary';
  /** vocabularyVersion: the content, whatever the files' format. */
  version: string;
  /** The files read, relative to their folder, with their hashes. */
  files: RecordedFile[];
  concepts_loaded: number;
  maps_to_pairs_loaded: number;
}

/** OUT/artifacts/vocabulary.json of either runner: the content version and the files it came from. */
export async function vocabularyArtifact(conn: DuckDBConnection, files: string[], folder: string, loaded: { concepts: number; mapsToPairs: number }): Promise<VocabularyArtifact> {
  return {
    kind: 'medrep.vocabulary',
    version: await vocabularyVersion(conn),
    files: await recordedFiles(files, folder),
    concepts_loaded: loaded.concepts,
    maps_to_pairs_loaded: loaded.mapsToPairs,
  };
}

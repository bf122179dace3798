// What `medrep stream` binds its transforms to: the decile boundaries (a versioned artifact, e.g.
// OUT/artifacts/deciles.json of a `medrep run`) and the vocabulary of an Athena/OMOP folder. Every
// record the stages emit carries both versions.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DuckDBConnection } from '@duckdb/node-api';
import { VOCABULARY_TABLES } from '../../schemas/omop';
import { DecileArtifact } from '../../transforms/deciles';
import { buildVocabularyIndex } from '../../transforms/normalize';
import { queryRows, sqlString } from '../../sources/duck';
import { UserError } from '../../common/errors';
import { readDecileArtifact } from '../../sources/decileArtifact';
import { createOmopViews } from '../../sources/omopViews';
import { CsvRejectLog } from '../../sources/csvRecords';
import { OmopInput, SourceTable, vocabularyRelation } from '../../sources/omopSource';
import { ConceptInfo, LoadedVocabulary, VocabularyArtifact, vocabularyArtifact } from '../../sources/vocabulary';

export interface StreamArtifacts {
  deciles: DecileArtifact;
  vocabulary: LoadedVocabulary;
  vocabularyArtifact: VocabularyArtifact;
}

const VOCAB_FILE = /^(concept|concept_relationship|concept_ancestor)\.(csv|tsv|txt|parquet)(\.gz)?$/i;

/** The vocabulary tables of a folder (Athena download or an OMOP folder with them) as DuckDB views. */
async function openVocabularyFolder(conn: DuckDBConnection, dir: string): Promise<OmopInput> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UserError(`vocabulary folder not found: ${dir}`);
  const tables = new Map<string, SourceTable>();
  for (const name of fs.readdirSync(dir).sort()) {
    const m = VOCAB_FILE.exec(name);
    if (!m) continue;
    const table = m[1].toLowerCase() as keyof typeof VOCABULARY_TABLES;
    const file = path.join(dir, name);
    const parquet = /\.parquet$/i.test(name);
    const relation = parquet ? `read_parquet(${sqlString(file)})` : await vocabularyRelation([file]);
    const desc = await queryRows<{ column_name: string; column_type: string }>(conn, `DESCRIBE SELECT * FROM ${relation}`);
    tables.set(table, {
      table, file, files: [file], kind: parquet ? 'parquet' : 'csv', relation, fileRowColumn: null, readRejects: CsvRejectLog.none(),
      columns: new Map(desc.map((d) => [d.column_name.toLowerCase(), d.column_name])),
      types: new Map(desc.map((d) => [d.column_name.toLowerCase(), d.column_type])),
    });
  }
  if (!tables.has('concept')) throw new UserError(`${dir}: no CONCEPT file (concept.csv/.parquet)`);
  const input: OmopInput = { path: dir, kind: tables.get('concept')!.kind, tables };
  await createOmopViews(conn, input);
  return input;
}

/**
 * The whole vocabulary of the folder (not only the closure of one data set's concepts, which a
 * stream does not know in advance): every concept and every valid "Maps to" pair. Normalization
 * gives the same result as with the local runner's closure, which is a subset of it.
 */
export async function loadStreamArtifacts(conn: DuckDBConnection, opts: { vocab: string; deciles?: string; artifacts?: string }): Promise<StreamArtifacts> {
  const decileFile = opts.deciles ?? (opts.artifacts ? path.join(opts.artifacts, 'deciles.json') : undefined);
  if (!decileFile) throw new UserError('medrep stream: give --artifacts DIR (with deciles.json) or --deciles FILE');
  const deciles = readDecileArtifact(decileFile);
  const input = await openVocabularyFolder(conn, opts.vocab);
  const conceptRows = await queryRows<ConceptInfo & { invalid_reason: string | null }>(
    conn,
    `SELECT CAST(concept_id AS DOUBLE) AS concept_id, concept_name, domain_id, vocabulary_id, concept_code,
            nullif(standard_concept, '') AS standard_concept, nullif(invalid_reason, '') AS invalid_reason
       FROM concept WHERE concept_id IS NOT NULL ORDER BY concept_id`,
  );
  const pairs = await queryRows<{ a: number; b: number }>(
    conn,
    `SELECT DISTINCT CAST(concept_id_1 AS DOUBLE) AS a, CAST(concept_id_2 AS DOUBLE) AS b FROM concept_relationship
      WHERE relationship_id = 'Maps to' AND coalesce(invalid_reason, '') = '' ORDER BY a, b`,
  );
  const index = buildVocabularyIndex(conceptRows, pairs.map((p) => [p.a, p.b] as [number, number]));
  const concepts = new Map<number, ConceptInfo>();
  for (const c of conceptRows) concepts.set(c.concept_id, c);
  const files = Object.keys(VOCABULARY_TABLES).flatMap((t) => input.tables.get(t)?.files ?? []);
  // Same version as the local runner's: the vocabulary's content, whatever its files' format.
  const artifact = await vocabularyArtifact(conn, files, opts.vocab, { concepts: concepts.size, mapsToPairs: pairs.length });
  return { deciles, vocabulary: { index, concepts, mapsToPairs: pairs.length }, vocabularyArtifact: artifact };
}

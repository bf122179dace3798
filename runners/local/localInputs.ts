// The local run's inputs before its event pass: the vocabulary in reach of the data, the rows the
// readers set aside, the persons and their splits, and the selected tasks' samples with a shard
// sink per task. Artifacts (vocabulary, deciles, tasks) are written here as versioned JSON files.
import * as path from 'node:path';
import { DuckDBConnection } from '@duckdb/node-api';
import { VOCABULARY_TABLES } from '../../schemas/omop';
import { Split, splitOf } from '../../transforms/splits';
import { LabelRecord, taskArtifact } from '../../transforms/labels';
import { Id } from '../../schemas/ids';
import { RejectSink } from '../../sinks/rejects';
import { ShardSeries, ShardWriter } from '../../sinks/shards';
import { SampleBatch } from '../../sinks/sampleShards';
import { writeFileAtomic } from '../../sinks/parquet';
import { Logger } from '../../common/progress';
import { EVENT_SPECS } from '../../sources/eventSource';
import { recordedFiles } from '../../sources/fileHashes';
import { OmopInput } from '../../sources/omopSource';
import { loadPersons } from '../../sources/persons';
import { loadVocabulary, vocabularyArtifact } from '../../sources/vocabulary';
import { LabelBatchResult, labelBatch } from '../../sources/labelInputs';
import { TaskSelection, selectTasks } from '../../sources/runTasks';
import type { SampleSink } from './localAssembly';

export function writeJsonArtifact(out: string, name: string, value: unknown): string {
  const rel = path.posix.join('artifacts', name);
  writeFileAtomic(path.join(out, rel), new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n'));
  return rel;
}

/** The vocabulary in reach of the data, its artifact, and the hashes of the data files the manifest records. */
export async function readVocabulary(conn: DuckDBConnection, input: OmopInput, vocabDir: string | undefined) {
  const vocabFiles = Object.keys(VOCABULARY_TABLES).flatMap((t) => input.tables.get(t)?.files ?? []);
  const dataFiles = [...input.tables.entries()].filter(([t]) => !(t in VOCABULARY_TABLES)).flatMap(([, s]) => s.files);
  const dataHashes = await recordedFiles(dataFiles, input.path);
  const vocabulary = await loadVocabulary(conn, input);
  const artifact = await vocabularyArtifact(conn, vocabFiles, vocabDir ?? input.path, { concepts: vocabulary.concepts.size, mapsToPairs: vocabulary.mapsToPairs });
  return { vocabulary, artifact, dataHashes };
}

/** Sets aside the rows the readers could not parse; returns rows in per event table, counting them. */
export function readRejectsOf(input: OmopInput, rejects: RejectSink): Record<string, number> {
  const rowsIn: Record<string, number> = {};
  for (const [table, source] of input.tables) {
    for (const r of source.readRejects) rejects.add({ file: r.file, table, row: r.row, line: r.line, column: r.column, reason: r.reason, values: { record: r.text } });
    // Rows in of the event tables count every record read, readable or not.
    if (source.readRejects.count && EVENT_SPECS.some((e) => e.table === table)) rowsIn[table] = source.readRejects.count;
  }
  return rowsIn;
}

/** The persons that pass the checks, why the others were set aside, and each person's split (decided once). */
export async function readPersons(conn: DuckDBConnection, input: OmopInput, rejects: RejectSink, warn: (line: string) => void) {
  const rejectedPersons = new Map<Id, string>();
  const persons = await loadPersons(conn, input, rejects, rejectedPersons);
  const personRows = persons.size + rejects.rowsOf('person');
  if (persons.size === 0) {
    warn(personRows === 0
      ? 'the person table is empty: no person passes the checks, so every clinical row is set aside'
      : `all ${personRows.toLocaleString('en-US')} person rows were rejected (see rejects/person.jsonl): no person passes the checks`);
  }
  const splits = new Map<Id, Split>();
  const splitOfPerson = (id: Id): Split | null => {
    if (!persons.has(id)) return null;
    let s = splits.get(id);
    if (!s) {
      s = splitOf(id);
      splits.set(id, s);
    }
    return s;
  };
  return { persons, rejectedPersons, personRows, splits, splitOfPerson };
}

export type People = Awaited<ReturnType<typeof readPersons>>;

export type Labelled = LabelBatchResult | null;

/**
 * The selected tasks' label queries, started (null: no task). They read no artifact of the run, so
 * DuckDB runs them on their connection while the caller fits the deciles on another.
 */
export function startLabelling(conn: DuckDBConnection, opts: TaskSelection, log: Logger): Promise<Labelled> {
  const tasks = selectTasks(opts, log);
  return tasks.length ? labelBatch(conn, tasks) : Promise.resolve(null);
}

/** The labelled tasks' samples by person, a sample sink per task, and each task's artifact. */
export function labelSamples(
  labelled: Labelled, out: string, pool: ShardWriter,
  artifacts: Record<string, { path: string; version: string }>, warn: (line: string) => void,
) {
  for (const sk of labelled?.skipped ?? []) warn(`task ${sk.task} skipped: ${sk.reason}`);
  for (const w of labelled?.warnings ?? []) warn(w);
  const samplesByPerson = new Map<Id, LabelRecord[]>();
  const samples = new Map<string, SampleSink>();
  for (const t of labelled?.tasks ?? []) {
    const multi = t.multiLabel;
    samples.set(t.name, { series: new ShardSeries('samples', out, `samples/${t.name}`, pool), batch: new SampleBatch(multi), multi, meds: [] });
    const art = taskArtifact(t);
    artifacts[`task:${t.name}`] = { path: writeJsonArtifact(out, `tasks/${t.name}.json`, art), version: art.hash };
  }
  for (const r of labelled?.samples ?? []) {
    if (r.kind !== 'sample' || r.retracted || r.prediction_time === null) continue;
    let list = samplesByPerson.get(r.person_id);
    if (!list) samplesByPerson.set(r.person_id, (list = []));
    list.push(r);
  }
  return { labelled, samples, samplesByPerson };
}

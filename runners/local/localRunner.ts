// The embedded runner: OMOP files in, the output folder of DESIGN.md section 4 out, in-process.
// Pass 1 fits decile boundaries on the training split; pass 2 streams every event sorted by
// person and time through the transforms into event and pretraining shards; then MEDS export
// and the manifest.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DuckDBConnection } from '@duckdb/node-api';
import { OMOP_SCHEMA_VERSION } from '../../schemas/omop';
import { SCHEMA_VERSION } from '../../schemas/records';
import { DecileArtifact, DecileBinner } from '../../transforms/deciles';
import { EventCanonicalizer, unitNamer } from '../../transforms/events';
import { ConceptNormalizer, MappingCounts, notInVocabulary, notInVocabularyWarning } from '../../transforms/normalize';
import { DEFAULT_MAX_EVENTS } from '../../transforms/trajectory';
import { writeManifest, Manifest } from '../../sinks/manifest';
import { exportMeds } from '../../sinks/meds';
import { RejectSink } from '../../sinks/rejects';
import { DEFAULT_EVENTS_PER_SHARD, DEFAULT_SEQUENCES_PER_SHARD, ShardEntry, ShardSeries } from '../../sinks/shards';
import { DuckShardWriter } from '../../sinks/duckShardWriter';
import { fitDeciles } from './decileFit';
import { openDuckInstance } from '../../sources/duck';
import { recordedFiles } from '../../sources/fileHashes';
import { createOmopViews } from '../../sources/omopViews';
import { OmopInput, openOmopInput } from '../../sources/omopSource';
import { openMedsInput } from '../../sources/medsSource';
import { Logger, consoleLogger } from '../../common/progress';
import { SkippedTask } from '../../sources/labelInputs';
import { TaskSelection } from '../../sources/runTasks';
import { TaskSummary } from '../../transforms/labels';
import { writeMedsLabels } from '../../sinks/medsLabels';
import { PersonAssembler } from './localAssembly';
import { DEFAULT_ROWS_PER_RANGE, streamEvents } from './localEvents';
import { Labelled, People, labelSamples, readPersons, startLabelling, readRejectsOf, readVocabulary, writeJsonArtifact } from './localInputs';
import { withOutputDir } from '../../common/outputDir';
import { isDuckOutOfMemory, outOfMemoryError, resolveMemoryLimit } from '../../sources/memoryLimit';

export interface RunOptions {
  /** The input: an OMOP CDM folder or DuckDB file (`omop`), or a MEDS folder (`medsInput`). */
  omop?: string;
  medsInput?: string;
  vocab?: string;
  out: string;
  /** Events per trajectory window and per pretraining chunk. */
  maxEvents?: number;
  eventsPerShard?: number;
  sequencesPerShard?: number;
  /** DuckDB's memory cap (it spills beyond it); default from the machine's memory (memoryLimit.ts). */
  memoryLimit?: string;
  meds?: boolean;
  /** Event rows per sorted range (see DEFAULT_ROWS_PER_RANGE). */
  rowsPerRange?: number;
  /** Replace a previous medrep output in `out` (see outputDir.ts). */
  force?: boolean;
  log?: Logger;
}

export type RunOptionsWithTasks = RunOptions & TaskSelection;

export interface RunSummary {
  out: string;
  input: { path: string; kind: string };
  persons: number;
  rowsIn: Record<string, number>;
  rowsInTotal: number;
  eventsOut: Record<string, number>;
  eventsOutTotal: number;
  mapping: Record<string, MappingCounts>;
  /** Rows per table whose concept the vocabulary lacks (kept as tokens with their own ids). */
  notInVocabulary: Record<string, number>;
  rejects: Record<string, number>;
  rejectsTotal: number;
  measurementsBinned: number;
  decileGroups: number;
  pretrainSequences: number;
  pretrainTokens: number;
  shards: { events: number; pretrain: number; meds: number; samples: number };
  tasks: TaskSummary[];
  /** Tasks not labelled because their concept sets resolve to nothing in this vocabulary. */
  tasksSkipped: SkippedTask[];
  /** What the run warned about, one line each (also in the manifest). */
  warnings: string[];
  /** Set when the run had nothing to emit: why, in one line. */
  nothingUsable: string | null;
  /** Summary lines of an input derived from another layout (MEDS). */
  inputLines: string[];
  seconds: number;
  rowsPerSecond: number;
  manifest: string;
}

export async function runLocal(opts: RunOptionsWithTasks): Promise<RunSummary> {
  const out = path.resolve(opts.out);
  const memoryLimit = resolveMemoryLimit(opts.memoryLimit);
  return withOutputDir(out, { command: 'run', force: opts.force, log: opts.log }, () =>
    runLocalInto(out, opts, memoryLimit).catch((e) => {
      throw isDuckOutOfMemory(e) ? outOfMemoryError(e, memoryLimit) : e;
    }),
  );
}

async function runLocalInto(out: string, opts: RunOptionsWithTasks, memoryLimit: string): Promise<RunSummary> {
  const log = opts.log ?? consoleLogger;
  const started = Date.now();
  const shape: ShardShape = {
    maxEvents: opts.maxEvents ?? DEFAULT_MAX_EVENTS,
    eventsPerShard: opts.eventsPerShard ?? DEFAULT_EVENTS_PER_SHARD,
    sequencesPerShard: opts.sequencesPerShard ?? DEFAULT_SEQUENCES_PER_SHARD,
  };
  const tmp = path.join(out, '.tmp');
  return withRunResources(tmp, memoryLimit, async (res) => {
    const warnings: string[] = [];
    const warn = (line: string) => {
      warnings.push(line);
      log.warn(line);
    };
    const run: RunContext = { out, tmp, opts, memoryLimit, shape, log, warn, clock: new StepClock(log), ...res };
    const inputs = await readInputs(run);
    const prepared = await fitAndLabel(run, inputs);
    const written = await writeShards(run, inputs, prepared);
    const meds = await exportMedsCopy(run, inputs, prepared, written);
    return finishRun(run, inputs, prepared, written, meds, warnings, (Date.now() - started) / 1000);
  });
}

/** What every step of a run reads: its options, where it writes, its log and its DuckDB connections. */
interface RunContext {
  out: string;
  tmp: string;
  opts: RunOptionsWithTasks;
  memoryLimit: string;
  shape: ShardShape;
  log: Logger;
  warn: (line: string) => void;
  clock: StepClock;
  conn: DuckDBConnection;
  conn2: DuckDBConnection;
  pool: DuckShardWriter;
}

/** Step 1: the input opened and checked, its vocabulary, the rows set aside so far, the persons. */
async function readInputs(run: RunContext) {
  const { conn, opts, clock } = run;
  // The input step's time includes checking (and for CSV staging) every clinical file.
  const input = opts.medsInput ? await openMedsInput(conn, opts.medsInput, opts.vocab, run.tmp) : await openOmopInput(conn, opts.omop!, opts.vocab, run.tmp, { stageCsv: true });
  await createOmopViews(conn, input);
  clock.step(`input: ${input.path} (${input.kind}); tables: ${[...input.tables.keys()].sort().join(', ')}; DuckDB memory limit ${run.memoryLimit}`);
  const vocab = await readVocabulary(conn, input, opts.vocab);
  clock.step(`vocabulary: ${vocab.vocabulary.concepts.size} concepts and ${vocab.vocabulary.mapsToPairs} "Maps to" pairs in reach of the data`);
  const rejects = new RejectSink(path.join(run.out, 'rejects'));
  await input.derivation?.setAside(conn, rejects);
  const rowsIn = readRejectsOf(input, rejects);
  const people = await readPersons(conn, input, rejects, run.warn);
  clock.step(`persons: ${people.persons.size}`);
  return { input, vocab, rejects, rowsIn, people };
}
type Inputs = Awaited<ReturnType<typeof readInputs>>;

/** Step 2: decile boundaries fitted on the training split, the artifacts written, the samples labelled. */
async function fitAndLabel(run: RunContext, { vocab, people }: Inputs) {
  const normalizer = new ConceptNormalizer(vocab.vocabulary.index);
  const units = unitNamer((id) => vocab.vocabulary.concepts.get(id)?.concept_code);
  const labelling = startLabelling(run.conn2, run.opts, run.log);
  labelling.catch(() => {}); // awaited below; a failed fit must not leave its rejection unhandled
  const fit = await fitDeciles(run.conn, normalizer, units, people.splitOfPerson);
  const deciles: DecileArtifact = fit.artifact;
  run.clock.step(`deciles: ${deciles.groups.length} (concept, unit) groups fitted on ${fit.valuesUsed} training values (version ${deciles.version.slice(0, 19)})`);
  const artifacts: Record<string, { path: string; version: string }> = {
    vocabulary: { path: writeJsonArtifact(run.out, 'vocabulary.json', vocab.artifact), version: vocab.artifact.version },
    deciles: { path: writeJsonArtifact(run.out, 'deciles.json', deciles), version: deciles.version },
  };
  const labels = labelSamples(await labelling, run.out, run.pool, artifacts, run.warn);
  // The labels' time is what remains of them once the deciles are fitted.
  if (labels.labelled) run.clock.step(`labels: ${labels.labelled.samples.length} samples over ${labels.labelled.tasks.length} tasks`);
  const canon = new EventCanonicalizer(normalizer, units, new DecileBinner(deciles));
  return { deciles, artifacts, labels, canon };
}
type Prepared = Awaited<ReturnType<typeof fitAndLabel>>;

/** Step 3: the event pass and the per-person assembly into events, pretraining and samples shards. */
async function writeShards(run: RunContext, { input, people, rejects, rowsIn }: Inputs, { labels, canon }: Prepared) {
  const { out, pool, shape } = run;
  const eventShards = new ShardSeries('events', out, 'events', pool);
  const pretrainShards = new ShardSeries('pretrain', out, 'pretrain', pool);
  const assembler = new PersonAssembler({ persons: people.persons, splitOfPerson: people.splitOfPerson, maxEvents: shape.maxEvents, sequencesPerShard: shape.sequencesPerShard, pretrainShards, samples: labels.samples, samplesByPerson: labels.samplesByPerson });
  const rowsPerRange = run.opts.rowsPerRange ?? DEFAULT_ROWS_PER_RANGE;
  const streamed = await streamEvents({ conns: [run.conn, run.conn2], input, rowsPerRange, log: run.log, people, rejects, rowsIn, canon, eventShards, eventsPerShard: shape.eventsPerShard, assembler });
  await assembler.finishSamples();
  await streamed.flushEvents();
  await assembler.finishSequences();
  await Promise.all([eventShards.finish(), pretrainShards.finish(), ...[...labels.samples.values()].map((x) => x.series.finish())]);
  await pool.close();
  streamed.progress.finish();
  return { eventShards, pretrainShards, assembler, streamed };
}
type Written = Awaited<ReturnType<typeof writeShards>>;

/** Step 4: the MEDS copy of the events shards and the labels (unless --no-meds). */
async function exportMedsCopy(run: RunContext, { people }: Inputs, { labels }: Prepared, { eventShards }: Written): Promise<ShardEntry[]> {
  if (run.opts.meds === false) return [];
  run.clock.restart();
  const medsShards = await exportMeds([run.conn, run.conn2], run.out, eventShards.entries, people.splits);
  run.clock.step(`meds: ${medsShards.length} files`);
  if (labels.labelled) medsShards.push(...writeMedsLabels(run.out, labels.labelled.tasks, labels.samples));
  return medsShards;
}

/** Step 5: the counts, warnings and the manifest; the run's summary. */
function finishRun(run: RunContext, inputs: Inputs, prepared: Prepared, written: Written, medsShards: ShardEntry[], warnings: string[], seconds: number): RunSummary {
  const { input, vocab, rejects, rowsIn, people } = inputs;
  const { labels, canon, artifacts, deciles } = prepared;
  const { streamed } = written;
  const sampleShards = [...labels.samples.values()].flatMap((x) => x.series.entries);
  const rejectFiles = rejects.close();
  const rowsInTotal = Object.values(rowsIn).reduce((a, b) => a + b, 0) + people.persons.size;
  const eventsOutTotal = Object.values(streamed.eventsOut).reduce((a, b) => a + b, 0);
  const notInVocab = notInVocabulary(canon.counts.entries());
  const vocabWarning = notInVocabularyWarning(notInVocab);
  if (vocabWarning) run.warn(vocabWarning);
  const nothingUsable = nothingUsableReason(eventsOutTotal, people.persons.size, people.personRows, rowsInTotal);
  const shards = { events: written.eventShards.entries, pretrain: written.pretrainShards.entries, samples: sampleShards, meds: medsShards };
  const finished: FinishedRun = {
    out: run.out, input, dataHashes: vocab.dataHashes, artifacts, shape: run.shape, shards, rejects, rejectFiles, people, rowsIn, rowsInTotal,
    eventsOut: streamed.eventsOut, eventsOutTotal, canon, notInVocab, measurementsBinned: streamed.measurementsBinned,
    assembler: written.assembler, labelled: labels.labelled, warnings, nothingUsable,
  };
  const manifest = runManifest(finished);
  return runSummary(finished, manifest, writeManifest(run.out, manifest), deciles.groups.length, seconds);
}

/**
 * Runs `body` with a DuckDB instance spilling into `tmp` (two connections: the event ranges are
 * read two at a time) and a shard writer on a third (DuckDB encodes the shards); closes them all
 * and removes `tmp` however it ends.
 */
async function withRunResources<T>(tmp: string, memoryLimit: string, body: (r: { conn: DuckDBConnection; conn2: DuckDBConnection; pool: DuckShardWriter }) => Promise<T>): Promise<T> {
  fs.mkdirSync(tmp, { recursive: true });
  const instance = await openDuckInstance({ memoryLimit, tempDir: tmp }).catch((e) => {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  });
  const conn = await instance.connect();
  const conn2 = await instance.connect();
  const shardConn = await instance.connect();
  const pool = new DuckShardWriter(shardConn);
  try {
    return await body({ conn, conn2, pool });
  } finally {
    await pool.terminate();
    shardConn.closeSync();
    conn2.closeSync();
    conn.closeSync();
    instance.closeSync();
    // A failed run leaves no temporary file (DuckDB's spill files, half-written shards' tmp names).
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

interface ShardShape { maxEvents: number; eventsPerShard: number; sequencesPerShard: number }

/** Logs each step's line with the seconds since the previous step. */
class StepClock {
  private start = Date.now();
  constructor(private readonly log: Logger) {}
  step(msg: string): void {
    const now = Date.now();
    this.log.info(`${msg} [${((now - this.start) / 1000).toFixed(1)}s]`);
    this.start = now;
  }
  restart(): void { this.start = Date.now(); }
}

/** Why a run emitted nothing, in one line (null when it emitted events). */
function nothingUsableReason(eventsOutTotal: number, persons: number, personRows: number, rowsInTotal: number): string | null {
  if (eventsOutTotal > 0) return null;
  if (persons === 0) return personRows === 0 ? 'the person table is empty' : `all ${personRows.toLocaleString('en-US')} person rows were rejected`;
  return `all ${(rowsInTotal - persons).toLocaleString('en-US')} clinical rows were rejected`;
}

/** What a finished run hands to its manifest. */
interface FinishedRun {
  out: string;
  input: OmopInput;
  dataHashes: Awaited<ReturnType<typeof recordedFiles>>;
  artifacts: Record<string, { path: string; version: string }>;
  shape: ShardShape;
  shards: { events: ShardEntry[]; pretrain: ShardEntry[]; samples: ShardEntry[]; meds: ShardEntry[] };
  rejects: RejectSink;
  rejectFiles: ReturnType<RejectSink['close']>;
  people: People;
  rowsIn: Record<string, number>;
  rowsInTotal: number;
  eventsOut: Record<string, number>;
  eventsOutTotal: number;
  canon: EventCanonicalizer;
  notInVocab: Record<string, number>;
  measurementsBinned: number;
  assembler: PersonAssembler;
  labelled: Labelled;
  warnings: string[];
  nothingUsable: string | null;
}

function runManifest(r: FinishedRun): Manifest {
  const { input, labelled } = r;
  return {
    kind: 'medrep.manifest',
    schema_version: SCHEMA_VERSION,
    omop_schema: OMOP_SCHEMA_VERSION,
    runner: 'local',
    // Files relative to the input folder (or the database file's folder): no path of this machine.
    input: { name: path.basename(input.path), kind: input.kind, files: r.dataHashes },
    artifacts: r.artifacts,
    settings: { max_events: r.shape.maxEvents, events_per_shard: r.shape.eventsPerShard, sequences_per_shard: r.shape.sequencesPerShard },
    shards: [...r.shards.events, ...r.shards.pretrain, ...r.shards.samples, ...r.shards.meds],
    rejects: r.rejectFiles.map((f) => ({ path: path.relative(r.out, f.path), rows: f.rows })),
    counts: {
      persons: r.people.persons.size,
      rows_in: r.rowsIn,
      events_out: r.eventsOut,
      mapping: Object.fromEntries([...r.canon.counts.entries()].sort()),
      not_in_vocabulary: r.notInVocab,
      rejects: r.rejects.summary(),
      measurements_binned: r.measurementsBinned,
      pretrain_sequences: r.assembler.pretrainSequences,
      pretrain_tokens: r.assembler.pretrainTokens,
      tasks: labelled?.summary.tasks ?? [],
      tasks_skipped: labelled?.skipped ?? [],
      // No record read: no watermark (the labeler's end is then -Infinity).
      label_watermark: labelled && Number.isFinite(labelled.finalWatermark) ? new Date(labelled.finalWatermark).toISOString() : null,
      warnings: r.warnings,
      nothing_usable: r.nothingUsable,
      ...(input.derivation ? { [input.derivation.name]: input.derivation.counts } : {}),
    },
  };
}

function runSummary(r: FinishedRun, manifest: Manifest, manifestPath: string, decileGroups: number, seconds: number): RunSummary {
  return {
    out: r.out,
    input: { path: r.input.path, kind: r.input.kind },
    persons: r.people.persons.size,
    rowsIn: r.rowsIn,
    rowsInTotal: r.rowsInTotal,
    eventsOut: r.eventsOut,
    eventsOutTotal: r.eventsOutTotal,
    mapping: manifest.counts.mapping as Record<string, MappingCounts>,
    notInVocabulary: r.notInVocab,
    rejects: r.rejects.summary(),
    rejectsTotal: r.rejects.total,
    measurementsBinned: r.measurementsBinned,
    decileGroups,
    pretrainSequences: r.assembler.pretrainSequences,
    pretrainTokens: r.assembler.pretrainTokens,
    shards: { events: r.shards.events.length, pretrain: r.shards.pretrain.length, meds: r.shards.meds.length, samples: r.shards.samples.length },
    tasks: r.labelled?.summary.tasks ?? [],
    tasksSkipped: r.labelled?.skipped ?? [],
    warnings: r.warnings,
    nothingUsable: r.nothingUsable,
    inputLines: r.input.derivation?.summary ?? [],
    seconds,
    rowsPerSecond: r.rowsInTotal / seconds,
    manifest: manifestPath,
  };
}

// The embedded runner: OMOP files in, the output folder of DESIGN.md section 4 out, in-process.
// Pass 1 fits decile boundaries on the training split; pass 2 streams every event sorted by
// person and time through the transforms into event and pretraining shards; then MEDS export
// and the manifest.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DuckDBConnection } from '@duckdb/node-api';
import { OMOP_SCHEMA_VERSION, VOCABULARY_TABLES } from '../schemas/omop';
import { SCHEMA_VERSION } from '../schemas/records';
import { DecileArtifact, DecileBinner } from '../transforms/deciles';
import { CanonicalSlots, EventCanonicalizer, RawEventFields, unitNamer } from '../transforms/events';
import { ConceptNormalizer, MappingCounts, notInVocabulary, notInVocabularyWarning } from '../transforms/normalize';
import { Split, splitOf } from '../transforms/splits';
import { TOKEN_DOMAINS } from '../transforms/tokens';
import { DEFAULT_MAX_EVENTS, PersonEvents, buildSequence, chunkRanges, segmentsAndRanks, windowBefore } from '../transforms/trajectory';
import { EventBatch } from '../sinks/eventShards';
import { writeManifest, Manifest } from '../sinks/manifest';
import { exportMeds } from '../sinks/meds';
import { RejectSink } from '../sinks/rejects';
import { SequenceBatch } from '../sinks/sequenceShards';
import { DEFAULT_EVENTS_PER_SHARD, DEFAULT_SEQUENCES_PER_SHARD, ShardEntry, ShardSeries } from '../sinks/shards';
import { ParquetWriterPool } from '../sinks/parquetWorker';
import { fitDeciles } from './decileFit';
import { idValue, openDuckInstance, parseDuckJson, queryRows, queryValue } from './duck';
import { Id, compareIds } from '../schemas/ids';
import { EVENT_SPECS, personRanges, streamEventRanges } from './eventSource';
import { recordedFiles } from './fileHashes';
import { createOmopViews } from './omopViews';
import { OmopInput, cheapToRescan, openOmopInput } from './omopSource';
import { openMedsInput } from './medsSource';
import { Person, loadPersons, rejectRow } from './persons';
import { Logger, Progress, consoleLogger } from '../common/progress';
import { loadVocabulary, vocabularyArtifact } from './vocabulary';
import { SkippedTask, labelBatch } from './labelInputs';
import { TaskSelection, selectTasks } from './runTasks';
import { LabelRecord, TaskSummary, taskArtifact } from '../transforms/labels';
import { SampleBatch } from '../sinks/sampleShards';
import { writeMedsLabels } from '../sinks/medsLabels';
import { writeFileAtomic } from '../sinks/parquet';
import { withOutputDir } from '../common/outputDir';
import { isDuckOutOfMemory, outOfMemoryError, resolveMemoryLimit } from './memoryLimit';

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

function writeJsonArtifact(out: string, name: string, value: unknown): string {
  const rel = path.posix.join('artifacts', name);
  writeFileAtomic(path.join(out, rel), new TextEncoder().encode(JSON.stringify(value, null, 2) + '\n'));
  return rel;
}

/** Growable per-person buffer of token events. */
class PersonBuffer implements PersonEvents {
  times = new Float64Array(4096);
  /** A plain array: concept ids are small integers, but an unknown one may be a bigint. */
  conceptIds: Id[] = [];
  deciles = new Int8Array(4096);
  domains = new Int8Array(4096);
  length = 0;
  visitStarts: number[] = [];
  push(t: number, concept: Id, decile: number, domain: number): void {
    if (this.length === this.times.length) {
      const grow = <A extends Float64Array | Int8Array>(a: A, C: { new (n: number): A }): A => {
        const b = new C(a.length * 2);
        b.set(a);
        return b;
      };
      this.times = grow(this.times, Float64Array);
      this.deciles = grow(this.deciles, Int8Array);
      this.domains = grow(this.domains, Int8Array);
    }
    this.times[this.length] = t;
    this.conceptIds[this.length] = concept;
    this.deciles[this.length] = decile;
    this.domains[this.length] = domain;
    this.length++;
  }
  reset(): void {
    this.length = 0;
    this.visitStarts = [];
  }
}

async function inputRowCount(conn: DuckDBConnection, input: OmopInput): Promise<number | null> {
  // Parquet (a staged CSV copy too) and DuckDB know their row counts cheaply; CSV would need a full parse.
  const tables = EVENT_SPECS.flatMap((spec) => input.tables.get(spec.table) ?? []);
  if (!tables.every(cheapToRescan)) return null;
  let total = 0;
  for (const t of tables) total += Number(await queryValue<bigint | number>(conn, `SELECT count(*) FROM ${t.relation}`));
  return total;
}

/** Rows sorted per query; smaller ranges overlap sorting with transforming but rescan the files. */
export const DEFAULT_ROWS_PER_RANGE = 1_000_000;

async function planRanges(conn: DuckDBConnection, total: number | null, rowsPerRange: number) {
  // No total: an input not cheap to rescan (unstaged CSV would be parsed once per range): one range.
  if (total === null || total <= rowsPerRange) return personRanges([]);
  const k = Math.ceil(total / rowsPerRange);
  const qs = Array.from({ length: k - 1 }, (_, i) => (i + 1) / k);
  const [row] = await queryRows<{ cuts: bigint[] | null }>(conn, `SELECT quantile_disc(person_id, [${qs.join(', ')}]) AS cuts FROM person`);
  return personRanges((row.cuts ?? []).map(idValue));
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
  const maxEvents = opts.maxEvents ?? DEFAULT_MAX_EVENTS;
  const eventsPerShard = opts.eventsPerShard ?? DEFAULT_EVENTS_PER_SHARD;
  const sequencesPerShard = opts.sequencesPerShard ?? DEFAULT_SEQUENCES_PER_SHARD;
  const tmp = path.join(out, '.tmp');
  fs.mkdirSync(tmp, { recursive: true });
  const instance = await openDuckInstance({ memoryLimit, tempDir: tmp }).catch((e) => {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  });
  const conn = await instance.connect();
  const conn2 = await instance.connect();
  const pool = new ParquetWriterPool();
  try {
    // The input step's time includes checking (and for CSV staging) every clinical file.
    let stepStart = Date.now();
    const input = opts.medsInput ? await openMedsInput(conn, opts.medsInput, opts.vocab, tmp) : await openOmopInput(conn, opts.omop!, opts.vocab, tmp, { stageCsv: true });
    await createOmopViews(conn, input);
    const step = (msg: string) => {
      const now = Date.now();
      log.info(`${msg} [${((now - stepStart) / 1000).toFixed(1)}s]`);
      stepStart = now;
    };
    step(`input: ${input.path} (${input.kind}); tables: ${[...input.tables.keys()].sort().join(', ')}; DuckDB memory limit ${memoryLimit}`);

    const vocabFiles = Object.keys(VOCABULARY_TABLES).flatMap((t) => input.tables.get(t)?.files ?? []);
    const dataFiles = [...input.tables.entries()].filter(([t]) => !(t in VOCABULARY_TABLES)).flatMap(([, s]) => s.files);
    const dataHashes = await recordedFiles(dataFiles, input.path);
    const vocabulary = await loadVocabulary(conn, input);
    const vocabArtifact = await vocabularyArtifact(conn, vocabFiles, opts.vocab ?? input.path, { concepts: vocabulary.concepts.size, mapsToPairs: vocabulary.mapsToPairs });
    step(`vocabulary: ${vocabulary.concepts.size} concepts and ${vocabulary.mapsToPairs} "Maps to" pairs in reach of the data`);

    const rejects = new RejectSink(path.join(out, 'rejects'));
    await input.derivation?.setAside(conn, rejects);
    const rowsIn: Record<string, number> = {};
    for (const [table, source] of input.tables) {
      for (const r of source.readRejects) rejects.add({ file: r.file, table, row: r.row, line: r.line, column: r.column, reason: r.reason, values: { record: r.text } });
      // Rows in of the event tables count every record read, readable or not.
      if (source.readRejects.count && EVENT_SPECS.some((e) => e.table === table)) rowsIn[table] = source.readRejects.count;
    }
    const warnings: string[] = [];
    const warn = (line: string) => {
      warnings.push(line);
      log.warn(line);
    };
    const rejectedPersons = new Map<Id, string>();
    const persons = await loadPersons(conn, input, rejects, rejectedPersons);
    const personRows = persons.size + rejects.rowsOf('person');
    step(`persons: ${persons.size}`);
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

    const normalizer = new ConceptNormalizer(vocabulary.index);
    const units = unitNamer((id) => vocabulary.concepts.get(id)?.concept_code);
    const fit = await fitDeciles(conn, normalizer, units, splitOfPerson);
    const deciles: DecileArtifact = fit.artifact;
    step(`deciles: ${deciles.groups.length} (concept, unit) groups fitted on ${fit.valuesUsed} training values (version ${deciles.version.slice(0, 19)})`);
    const artifacts: Record<string, { path: string; version: string }> = {
      vocabulary: { path: writeJsonArtifact(out, 'vocabulary.json', vocabArtifact), version: vocabArtifact.version },
      deciles: { path: writeJsonArtifact(out, 'deciles.json', deciles), version: deciles.version },
    };

    const tasks = selectTasks(opts, log);
    const labelled = tasks.length ? await labelBatch(conn, tasks) : null;
    for (const sk of labelled?.skipped ?? []) warn(`task ${sk.task} skipped: ${sk.reason}`);
    for (const w of labelled?.warnings ?? []) warn(w);
    const samplesByPerson = new Map<Id, LabelRecord[]>();
    const samples = new Map<string, { series: ShardSeries; batch: SampleBatch; multi: boolean; meds: { subjectId: Id; predictionMs: number; labels: number[] }[] }>();
    if (labelled) {
      for (const t of labelled.tasks) {
        const multi = t.multiLabel;
        samples.set(t.name, { series: new ShardSeries('samples', out, `samples/${t.name}`, pool), batch: new SampleBatch(multi), multi, meds: [] });
        const art = taskArtifact(t);
        artifacts[`task:${t.name}`] = { path: writeJsonArtifact(out, `tasks/${t.name}.json`, art), version: art.hash };
      }
      for (const r of labelled.samples) {
        if (r.kind !== 'sample' || r.retracted || r.prediction_time === null) continue;
        let list = samplesByPerson.get(r.person_id);
        if (!list) samplesByPerson.set(r.person_id, (list = []));
        list.push(r);
      }
      step(`labels: ${labelled.samples.length} samples over ${labelled.tasks.length} tasks`);
    }
    const emitSamples = async (personId: Id, info: { birthMs: number; genderConceptId: Id; visitStarts: number[] }, sr: ReturnType<typeof segmentsAndRanks>) => {
      const list = samplesByPerson.get(personId);
      if (!list) return;
      samplesByPerson.delete(personId);
      const split = splitOfPerson(personId)!;
      for (const r of list) {
        const sink = samples.get(r.task)!;
        const [from, to] = windowBefore(buffer, r.prediction_time!, maxEvents);
        sink.batch.push(personId, buildSequence(buffer, info, from, to, sr), split, r.prediction_time!, r.index_visit_id, r.label, r.labels);
        sink.meds.push({ subjectId: personId, predictionMs: r.prediction_time!, labels: sink.multi ? r.labels ?? [] : [r.label ?? 0] });
        if (sink.batch.length >= sequencesPerShard) {
          const full = sink.batch;
          sink.batch = new SampleBatch(sink.multi);
          await sink.series.write(full.toTable());
        }
      }
    };

    const canon = new EventCanonicalizer(normalizer, units, new DecileBinner(deciles));
    const eventShards = new ShardSeries('events', out, 'events', pool);
    const pretrainShards = new ShardSeries('pretrain', out, 'pretrain', pool);
    let events = new EventBatch();
    let sequences = new SequenceBatch();
    const eventsOut: Record<string, number> = {};
    let measurementsBinned = 0;
    let pretrainSequences = 0;
    let pretrainTokens = 0;

    const buffer = new PersonBuffer();
    let currentPerson: Id | null = null;
    const finishPerson = async (): Promise<void> => {
      if (currentPerson === null) return;
      const person = persons.get(currentPerson)!;
      const split = splitOfPerson(currentPerson)!;
      const sr = segmentsAndRanks(buffer, buffer.visitStarts);
      const info = { birthMs: person.birthMs, genderConceptId: person.genderConceptId, visitStarts: buffer.visitStarts };
      await emitSamples(currentPerson, info, sr);
      chunkRanges(buffer.length, maxEvents).forEach(([from, to], k) => {
        const seq = buildSequence(buffer, info, from, to, sr);
        sequences.push(currentPerson!, k, seq, split);
        pretrainSequences++;
        pretrainTokens += seq.conceptIds.length;
      });
      if (sequences.length >= sequencesPerShard) {
        const full = sequences;
        sequences = new SequenceBatch();
        await pretrainShards.write(full.toTable());
      }
      buffer.reset();
    };

    const total = await inputRowCount(conn, input);
    const progress = new Progress('events', total, log);
    const raw: RawEventFields = { domain: 0, conceptId: 0, sourceConceptId: 0, value: null, unitConceptId: 0, unitSource: null };
    const slots: CanonicalSlots = { conceptId: 0, status: 'standard', unit: null, decile: -1 };
    const files = EVENT_SPECS.map((sp) => input.tables.get(sp.table)?.file ?? sp.table);
    let seen = 0;
    const ranges = await planRanges(conn, total, opts.rowsPerRange ?? DEFAULT_ROWS_PER_RANGE);
    for await (const c of streamEventRanges([conn, conn2], input, ranges)) {
      for (let i = 0; i < c.length; i++) {
        const spec = EVENT_SPECS[c.tcode[i]];
        const ev = spec.events!;
        const file = files[c.tcode[i]];
        rowsIn[spec.table] = (rowsIn[spec.table] ?? 0) + 1;
        if (c.ok[i] !== 1) {
          rejectRow(rejects, file, spec.table, c.rn[i], parseDuckJson(c.raw(i)!), spec);
          continue;
        }
        const personId = c.personId(i);
        const person: Person | undefined = persons.get(personId);
        if (!person) {
          const personReason = rejectedPersons.get(personId);
          const reason = personReason ? `person rejected (${personReason})` : 'person_id not in the person table';
          rejects.add({ file, table: spec.table, row: c.rn[i], column: 'person_id', reason, values: { person_id: personId } });
          continue;
        }
        raw.domain = ev.domain;
        raw.conceptId = c.conceptId(i);
        raw.sourceConceptId = c.sourceConceptId(i);
        raw.value = c.valueNull(i) ? null : c.value[i];
        raw.unitConceptId = c.unitConceptId(i);
        raw.unitSource = ev.unitSourceColumn ? c.unitSource(i) : null;
        canon.apply(spec.table, raw, slots);
        if (personId !== currentPerson) {
          await finishPerson();
          if (events.length >= eventsPerShard) {
            const full = events;
            events = new EventBatch();
            await eventShards.write(full.toTable());
          }
          currentPerson = personId;
        }
        const t = c.t[i];
        events.push(
          personId, t, ev.eventTable, spec.table, ev.domain, slots.conceptId, raw.sourceConceptId, slots.decile,
          raw.value, slots.unit, c.visitNull(i) ? null : c.visitId(i), c.rowId(i), c.rn[i],
        );
        eventsOut[ev.eventTable] = (eventsOut[ev.eventTable] ?? 0) + 1;
        if (slots.decile >= 0) measurementsBinned++;
        if (TOKEN_DOMAINS.has(ev.domain)) buffer.push(t, slots.conceptId, slots.decile, ev.domain);
        else if (ev.eventTable === 'visit') buffer.visitStarts.push(t);
      }
      seen += c.length;
      progress.update(seen);
    }
    await finishPerson();
    // Persons labelled but without a readable event keep an empty window.
    buffer.reset();
    for (const personId of [...samplesByPerson.keys()].sort(compareIds)) {
      const person = persons.get(personId);
      if (!person) continue;
      await emitSamples(personId, { ...person, visitStarts: [] }, segmentsAndRanks(buffer, []));
    }
    for (const sink of samples.values()) if (sink.batch.length) await sink.series.write(sink.batch.toTable());
    if (events.length) await eventShards.write(events.toTable());
    if (sequences.length) await pretrainShards.write(sequences.toTable());
    await Promise.all([eventShards.finish(), pretrainShards.finish(), ...[...samples.values()].map((x) => x.series.finish())]);
    await pool.close();
    progress.finish();

    stepStart = Date.now();
    const medsShards: ShardEntry[] = opts.meds === false ? [] : await exportMeds(conn, out, eventShards.entries, splits);
    if (opts.meds !== false) step(`meds: ${medsShards.length} files`);
    if (opts.meds !== false && labelled) medsShards.push(...writeMedsLabels(out, labelled.tasks, samples));
    const sampleShards = [...samples.values()].flatMap((x) => x.series.entries);
    const rejectFiles = rejects.close();
    const rowsInTotal = Object.values(rowsIn).reduce((a, b) => a + b, 0) + persons.size;
    const eventsOutTotal = Object.values(eventsOut).reduce((a, b) => a + b, 0);
    const notInVocab = notInVocabulary(canon.counts.entries());
    const vocabWarning = notInVocabularyWarning(notInVocab);
    if (vocabWarning) warn(vocabWarning);
    const nothingUsable = eventsOutTotal > 0 ? null
      : persons.size === 0 ? (personRows === 0 ? 'the person table is empty' : `all ${personRows.toLocaleString('en-US')} person rows were rejected`)
      : `all ${(rowsInTotal - persons.size).toLocaleString('en-US')} clinical rows were rejected`;
    const seconds = (Date.now() - started) / 1000;
    const manifest: Manifest = {
      kind: 'medrep.manifest',
      schema_version: SCHEMA_VERSION,
      omop_schema: OMOP_SCHEMA_VERSION,
      runner: 'local',
      // Files relative to the input folder (or the database file's folder): no path of this machine.
      input: { name: path.basename(input.path), kind: input.kind, files: dataHashes },
      artifacts,
      settings: { max_events: maxEvents, events_per_shard: eventsPerShard, sequences_per_shard: sequencesPerShard },
      shards: [...eventShards.entries, ...pretrainShards.entries, ...sampleShards, ...medsShards],
      rejects: rejectFiles.map((r) => ({ path: path.relative(out, r.path), rows: r.rows })),
      counts: {
        persons: persons.size,
        rows_in: rowsIn,
        events_out: eventsOut,
        mapping: Object.fromEntries([...canon.counts.entries()].sort()),
        not_in_vocabulary: notInVocab,
        rejects: rejects.summary(),
        measurements_binned: measurementsBinned,
        pretrain_sequences: pretrainSequences,
        pretrain_tokens: pretrainTokens,
        tasks: labelled?.summary.tasks ?? [],
        tasks_skipped: labelled?.skipped ?? [],
        // No record read: no watermark (the labeler's end is then -Infinity).
        label_watermark: labelled && Number.isFinite(labelled.finalWatermark) ? new Date(labelled.finalWatermark).toISOString() : null,
        warnings,
        nothing_usable: nothingUsable,
        ...(input.derivation ? { [input.derivation.name]: input.derivation.counts } : {}),
      },
    };
    const manifestPath = writeManifest(out, manifest);
    return {
      out,
      input: { path: input.path, kind: input.kind },
      persons: persons.size,
      rowsIn,
      rowsInTotal,
      eventsOut,
      eventsOutTotal,
      mapping: manifest.counts.mapping as Record<string, MappingCounts>,
      notInVocabulary: notInVocab,
      rejects: rejects.summary(),
      rejectsTotal: rejects.total,
      measurementsBinned,
      decileGroups: deciles.groups.length,
      pretrainSequences,
      pretrainTokens,
      shards: { events: eventShards.entries.length, pretrain: pretrainShards.entries.length, meds: medsShards.length, samples: sampleShards.length },
      tasks: labelled?.summary.tasks ?? [],
      tasksSkipped: labelled?.skipped ?? [],
      warnings,
      nothingUsable,
      inputLines: input.derivation?.summary ?? [],
      seconds,
      rowsPerSecond: rowsInTotal / seconds,
      manifest: manifestPath,
    };
  } finally {
    await pool.terminate();
    conn2.closeSync();
    conn.closeSync();
    instance.closeSync();
    // A failed run leaves no temporary file (DuckDB's spill files, half-written shards' tmp names).
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

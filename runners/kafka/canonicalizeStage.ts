// The canonicalize stage of `medrep stream`: omop.<table> JSON rows -> normalized, unit-named,
// decile-binned events (EventCanonicalizer, as in the local runner) and persons, as columnar
// batches on medrep.canonical; unreadable rows -> dead-letter topic (a concept the vocabulary lacks
// is kept as its own id, as by the local runner).
import { EventsBatchValue, PersonsBatchValue, ROWS_PER_MESSAGE, Versions, endOf, eventsBatch, isEndOfLoad, streamMessage, valueRows } from './streamValues';
import { LabelerFields, pushEvent } from '../../schemas/eventColumns';
import { ClinicalTable, tableSpec } from '../../schemas/omop';
import { DecileBinner } from '../../transforms/deciles';
import { EventCanonicalizer, unitNamer } from '../../transforms/events';
import { emptyCanonicalEvent, emptyOmopEventRow } from '../../schemas/canonicalEvent';
import { ConceptNormalizer } from '../../transforms/normalize';
import { birthMs, idOr, intOr, readEventRow, timeMs } from './rowFields';
import { parseId } from '../../schemas/ids';
import { stringifyJsonExact } from '../../schemas/exactJson';
import { decodeOmopMessage, OmopInputError } from './omopInputCodec';
import { RowProblem, rowValidator } from '../../schemas/rowSchemas';
import { StageContext, StageMessage, OutputMessage, StageTransform } from './stage';
import { DeadLetterKind } from './deadLetter';
import { StreamArtifacts } from './streamArtifacts';
import { TopicNames } from './topics';



export function canonicalizeTransform(names: TopicNames, eventsTopic: string, art: StreamArtifacts): StageTransform {
  const normalizer = new ConceptNormalizer(art.vocabulary.index);
  const units = unitNamer((id) => art.vocabulary.concepts.get(id)?.concept_code);
  const canon = new EventCanonicalizer(normalizer, units, new DecileBinner(art.deciles));
  const versions: Versions = { deciles: art.deciles.version, vocabulary: art.vocabularyArtifact.version };
  const row = emptyOmopEventRow();
  const event = emptyCanonicalEvent();
  const labeler: LabelerFields = { givenConceptId: 0, startDateMs: null, endDateMs: null };

  return (messages: StageMessage[], ctx: StageContext): OutputMessage[] => {
    const table = names.tableOf(ctx.topic);
    if (table === null) throw new Error(`canonicalize: ${ctx.topic} is not an omop.<table> topic`);
    ctx.rowsRead(0); // rows are counted as read (a chunk of end markers holds none)
    const out: OutputMessage[] = [];
    if (table === 'person') {
      const empty = (): PersonsBatchValue => ({ k: 'persons', p: [], b: [], g: [], n: [], rp: [], rw: [] });
      return columnarBatches(messages, ctx, table, eventsTopic, empty, (batch, row) => {
        batch.p.push(idOr(row.person_id, 0));
        batch.b.push(birthMs(row));
        batch.g.push(idOr(row.gender_concept_id, 0));
        batch.n.push(intOr(row.__row, 0));
      }, (batch, row, first) => {
        // As the local runner: the rows of a person whose row was set aside say why (loadPersons).
        const id = first.column !== 'person_id' ? parseId(row.person_id) : null;
        if (id === null) return;
        batch.rp!.push(id);
        batch.rw!.push(`${first.column}: ${first.reason}`);
      });
    }
    const spec = tableSpec(table as ClinicalTable);
    const ev = spec.events;
    if (!ev) {
      // Tables that carry no events (e.g. observation_period) only pass their end marker on (their rows are not read).
      for (const m of messages) if (isEndOfLoad(m)) out.push(streamMessage(eventsTopic, ctx.partition, endOf(m, table)));
      return out;
    }
    const empty = () => eventsBatch(table, versions);
    return columnarBatches(messages, ctx, table, eventsTopic, empty, (batch, json, m, element) => {
      if (!readEventRow(json, ev, row)) {
        ctx.deadLetter(m, 'invalid-row', `column ${ev.dateColumn}: no readable date`, table, element);
        return;
      }
      canon.canonicalizeRow(table, ev, row, event);
      // The labeler reads the concept as given and dates: visit start and end, death date (00:00).
      labeler.givenConceptId = row.conceptId;
      labeler.startDateMs = table === 'visit_occurrence' ? timeMs(json.visit_start_date) : table === 'death' ? timeMs(json.death_date) : null;
      labeler.endDateMs = table === 'visit_occurrence' ? timeMs(json.visit_end_date) : null;
      pushEvent(batch, event, labeler);
    });
  };
}

/**
 * The rows of a chunk of one omop.<table> partition as columnar batches of up to ROWS_PER_MESSAGE
 * rows (`add` appends a row to a batch, or dead-letters it), with each end-of-load marker passed
 * on in order after the rows before it.
 */
function columnarBatches<B extends EventsBatchValue | PersonsBatchValue>(
  messages: StageMessage[],
  ctx: StageContext,
  table: string,
  eventsTopic: string,
  empty: () => B,
  add: (batch: B, row: Record<string, unknown>, m: StageMessage, element: ParsedRow['element']) => void,
  invalid?: (batch: B, row: Record<string, unknown>, first: RowProblem) => void,
): OutputMessage[] {
  const out: OutputMessage[] = [];
  let batch = empty();
  const size = () => valueRows(batch);
  const flush = () => {
    if (size()) out.push(streamMessage(eventsTopic, ctx.partition, batch));
    batch = empty();
  };
  for (const m of messages) {
    if (isEndOfLoad(m)) {
      flush();
      out.push(streamMessage(eventsTopic, ctx.partition, endOf(m, table)));
      continue;
    }
    for (const { row, element } of parseRows(m, ctx, table, invalid && ((r, first) => invalid(batch, r, first)))) {
      add(batch, row, m, element);
      if (size() >= ROWS_PER_MESSAGE) flush();
    }
  }
  flush();
  return out;
}

/**
 * The rows of a row message: its JSON object, or the objects of its JSON array or Arrow batch
 * (several rows of one person, keyed by that person_id). What is not a usable row is dead-lettered: the whole
 * message when it is not JSON, else the offending element alone.
 */
function parseRows(m: StageMessage, ctx: StageContext, table: string, invalid?: (row: Record<string, unknown>, first: RowProblem) => void): ParsedRow[] {
  let value: unknown;
  try {
    // JSON text or an Arrow batch of rows (omopInputCodec.ts): either way rows face the one check below.
    value = decodeOmopMessage(m);
  } catch (e) {
    ctx.rowsRead(1);
    ctx.deadLetter(m, e instanceof OmopInputError ? e.kind : 'not-json', (e as Error).message, table);
    return [];
  }
  ctx.rowsRead(Array.isArray(value) ? value.length : 1);
  if (!Array.isArray(value)) {
    const problem = rowProblem(value, null, table);
    if (problem === null) return [{ row: value as Record<string, unknown>, element: undefined }];
    ctx.deadLetter(m, problem[0], problem[1], table);
    if (problem[2]) invalid?.(value as Record<string, unknown>, problem[2]);
    return [];
  }
  const key = m.key === null ? null : m.key.toString();
  const rows: ParsedRow[] = [];
  value.forEach((v: unknown, index) => {
    const element = new RowElement(v, index);
    const problem = rowProblem(v, key, table);
    if (problem === null) rows.push({ row: v as Record<string, unknown>, element });
    else {
      ctx.deadLetter(m, problem[0], problem[1], table, element);
      if (problem[2]) invalid?.(v as Record<string, unknown>, problem[2]);
    }
  });
  return rows;
}

/** An element of a multi-row message; its text is written only when a dead letter needs it (most rows pass). */
class RowElement {
  constructor(private readonly parsed: unknown, readonly index: number) {}
  get value(): string {
    return stringifyJsonExact(this.parsed) ?? 'undefined';
  }
}

/** A row and, for a multi-row message, which element it was (what a dead letter carries). */
interface ParsedRow {
  row: Record<string, unknown>;
  element: { value: string; index: number } | undefined;
}

/**
 * Why a parsed value is not a row of `table` (of the person `key`, when a message carries
 * several), or null. Rows are held to the same schema as the local runner's (schemas/rowSchemas.ts),
 * whoever produced them: the same rows pass, the rest are dead letters naming the column (and
 * the schema's first problem, which the local runner's reject names).
 */
function rowProblem(v: unknown, key: string | null, table: string): [DeadLetterKind, string, RowProblem?] | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return ['not-an-object', 'a row must be a JSON object'];
  const problems = rowValidator(tableSpec(table as ClinicalTable)).check(v as Record<string, unknown>);
  if (problems.length) return ['invalid-row', problems.map((p) => `column ${p.column}: ${p.reason}`).join('; '), problems[0]];
  // The key places the message: a row of another person would miss that person's partition.
  const personId = parseId((v as Record<string, unknown>).person_id);
  if (key !== null && String(personId) !== key) return ['invalid-row', `column person_id: ${personId} differs from the message key of a multi-row message`];
  return null;
}


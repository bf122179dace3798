// The local runner's event pass: every clinical row of the person-sorted stream (read in person
// ranges, two queries at a time) is checked, canonicalized (EventCanonicalizer.canonicalizeRow,
// as in the Kafka runner) and batched into events shards, a shard boundary never splitting a
// person; token events and visit starts go to the person assembly. Rows that fail are set aside
// with their reason.
import { DuckDBConnection } from '@duckdb/node-api';
import { emptyCanonicalEvent, emptyOmopEventRow } from '../../schemas/canonicalEvent';
import { Id } from '../../schemas/ids';
import { TableSpec } from '../../schemas/omop';
import { EventCanonicalizer } from '../../transforms/events';
import { TOKEN_DOMAINS } from '../../transforms/tokens';
import { EventBatch } from '../../sinks/eventShards';
import { RejectSink } from '../../sinks/rejects';
import { ShardSeries } from '../../sinks/shards';
import { idValue, parseDuckJson, queryRows, queryValue } from '../../sources/duck';
import { EVENT_SPECS, personRanges, streamEventRanges } from '../../sources/eventSource';
import { OmopInput, cheapToRescan } from '../../sources/omopSource';
import { rejectRow } from '../../sources/persons';
import { Logger, Progress } from '../../common/progress';
import { PersonAssembler } from './localAssembly';
import { People } from './localInputs';

/** Rows sorted per query; smaller ranges overlap sorting with transforming but rescan the files. */
export const DEFAULT_ROWS_PER_RANGE = 1_000_000;

export interface EventPass {
  conns: [DuckDBConnection, DuckDBConnection];
  input: OmopInput;
  rowsPerRange: number;
  log: Logger;
  people: People;
  rejects: RejectSink;
  /** Rows read per table (counted here, rejects included). */
  rowsIn: Record<string, number>;
  canon: EventCanonicalizer;
  eventShards: ShardSeries;
  eventsPerShard: number;
  assembler: PersonAssembler;
}

export interface EventPassResult {
  eventsOut: Record<string, number>;
  measurementsBinned: number;
  progress: Progress;
  /** The last events batch, written after the assembly's last samples (as every shard series, in a fixed order). */
  flushEvents: () => Promise<void>;
}

async function inputRowCount(conn: DuckDBConnection, input: OmopInput): Promise<number | null> {
  // Parquet (a staged CSV copy too) and DuckDB know their row counts cheaply; CSV would need a full parse.
  const tables = EVENT_SPECS.flatMap((spec) => input.tables.get(spec.table) ?? []);
  if (!tables.every(cheapToRescan)) return null;
  let total = 0;
  for (const t of tables) total += Number(await queryValue<bigint | number>(conn, `SELECT count(*) FROM ${t.relation}`));
  return total;
}

async function planRanges(conn: DuckDBConnection, total: number | null, rowsPerRange: number) {
  // No total: an input not cheap to rescan (unstaged CSV would be parsed once per range): one range.
  if (total === null || total <= rowsPerRange) return personRanges([]);
  const k = Math.ceil(total / rowsPerRange);
  const qs = Array.from({ length: k - 1 }, (_, i) => (i + 1) / k);
  const [row] = await queryRows<{ cuts: bigint[] | null }>(conn, `SELECT quantile_disc(person_id, [${qs.join(', ')}]) AS cuts FROM person`);
  return personRanges((row.cuts ?? []).map(idValue));
}

/** Why a readable row's person has no trajectory (null: the person is known). */
function unknownPersonReason(people: People, personId: Id): string | null {
  if (people.persons.has(personId)) return null;
  const personReason = people.rejectedPersons.get(personId);
  return personReason ? `person rejected (${personReason})` : 'person_id not in the person table';
}

/**
 * Rows per table code of the stream, added to a record by name once the pass is done, in the
 * order the codes first came (the manifest's key order, as when counted by name per row).
 */
class CountsByCode {
  private readonly counts = new Float64Array(EVENT_SPECS.length);
  private readonly order: number[] = [];
  add(code: number): void {
    if (this.counts[code]++ === 0) this.order.push(code);
  }
  addTo(record: Record<string, number>, nameOf: (spec: TableSpec) => string): void {
    for (const code of this.order) {
      const name = nameOf(EVENT_SPECS[code]);
      record[name] = (record[name] ?? 0) + this.counts[code];
    }
  }
}

export async function streamEvents(c: EventPass): Promise<EventPassResult> {
  const { input, people, rejects, rowsIn, canon, assembler } = c;
  // Batches whose shard is written, reused: a fresh batch's buffers cost a page fault per 4 KiB as they grow.
  const spare: EventBatch[] = [];
  let events = new EventBatch();
  const eventsOut: Record<string, number> = {};
  let measurementsBinned = 0;
  const total = await inputRowCount(c.conns[0], input);
  const progress = new Progress('events', total, c.log);
  const row = emptyOmopEventRow();
  const event = emptyCanonicalEvent();
  const files = EVENT_SPECS.map((sp) => input.tables.get(sp.table)?.file ?? sp.table);
  let seen = 0;
  const readByCode = new CountsByCode();
  const outByCode = new CountsByCode();
  const ranges = await planRanges(c.conns[0], total, c.rowsPerRange);
  for await (const ch of streamEventRanges(c.conns, input, ranges)) {
    for (let i = 0; i < ch.length; i++) {
      const code = ch.tcode[i];
      const spec = EVENT_SPECS[code];
      const ev = spec.events!;
      const file = files[code];
      readByCode.add(code);
      if (ch.ok[i] !== 1) {
        rejectRow(rejects, file, spec.table, ch.rn[i], parseDuckJson(ch.raw(i)!), spec);
        continue;
      }
      const reason = unknownPersonReason(people, ch.personId(i));
      if (reason !== null) {
        rejects.add({ file, table: spec.table, row: ch.rn[i], column: 'person_id', reason, values: { person_id: ch.personId(i) } });
        continue;
      }
      row.personId = ch.personId(i);
      row.timeMs = ch.t[i];
      row.conceptId = ch.conceptId(i);
      row.sourceConceptId = ch.sourceConceptId(i);
      row.value = ch.valueNull(i) ? null : ch.value[i];
      row.unitConceptId = ch.unitConceptId(i);
      row.unitSource = ev.unitSourceColumn ? ch.unitSource(i) : null;
      row.visitId = ch.visitNull(i) ? null : ch.visitId(i);
      row.rowId = ch.rowId(i);
      row.row = ch.rn[i];
      canon.canonicalizeRow(spec.table, ev, row, event);
      if (event.personId !== assembler.current) {
        await assembler.finishPerson();
        if (events.length >= c.eventsPerShard) {
          const full = events;
          events = spare.pop()?.clear() ?? new EventBatch();
          await c.eventShards.write(full.toShard(), () => spare.push(full));
        }
        assembler.current = event.personId;
      }
      events.push(event);
      outByCode.add(code);
      if (event.decile >= 0) measurementsBinned++;
      if (TOKEN_DOMAINS.has(event.domain)) assembler.push(event.timeMs, event.conceptId, event.decile, event.domain);
      else if (event.table === 'visit') assembler.visitStart(event.timeMs);
    }
    seen += ch.length;
    progress.update(seen);
  }
  readByCode.addTo(rowsIn, (spec) => spec.table);
  outByCode.addTo(eventsOut, (spec) => spec.events!.eventTable);
  const flushEvents = async () => { if (events.length) await c.eventShards.write(events.toShard()); };
  return { eventsOut, measurementsBinned, progress, flushEvents };
}

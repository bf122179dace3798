// The dead-letter contract: a message medrep could not use goes to the dead-letter topic as it
// came (its bytes untouched), with why, where from and under which schema in its headers.
import { IHeaders, Message } from 'kafkajs';
import { OMOP_SCHEMA_VERSION } from '../../schemas/omop';

/** Header names of a dead-lettered message. */
export const DLQ_HEADERS = {
  reason: 'reason',
  source: 'source',
  schemaVersion: 'schema_version',
  table: 'table',
  /** The rejecting stage or `produce`. */
  stage: 'stage',
  /** Physical line in the source file, where the producer read the file and knows it. */
  line: 'line',
} as const;

export type DeadLetterKind = 'not-json' | 'not-arrow' | 'not-an-object' | 'unknown-table' | 'invalid-row' | 'transform-error';

export interface DeadLetter {
  kind: DeadLetterKind;
  /** One line: what is wrong, naming the column where there is one. */
  reason: string;
  /** Where the message came from: file and row, or topic/partition@offset. */
  source: string;
  table?: string;
  stage: string;
  line?: number;
}

export function deadLetterMessage(value: Buffer | string | null, key: Buffer | string | null, dl: DeadLetter): Message {
  const headers: IHeaders = {
    [DLQ_HEADERS.reason]: `${dl.kind}: ${dl.reason}`,
    [DLQ_HEADERS.source]: dl.source,
    [DLQ_HEADERS.schemaVersion]: OMOP_SCHEMA_VERSION,
    [DLQ_HEADERS.stage]: dl.stage,
  };
  if (dl.table !== undefined) headers[DLQ_HEADERS.table] = dl.table;
  if (dl.line !== undefined) headers[DLQ_HEADERS.line] = String(dl.line);
  return { key, value, headers };
}

/** Reads the headers of a dead-lettered message back as strings. */
export function deadLetterHeaders(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map((x) => x.toString()).join(',') : v.toString();
  }
  return out;
}

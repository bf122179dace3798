// Rows set aside: one JSON line each in OUT/rejects/<table>.jsonl with the file, the 1-based data
// row, the column and the reason, and the row's values as read so nothing is lost. Counted by
// reason for the run summary. (This is output data, never printed to the log.)
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringifyJsonExact } from '../schemas/exactJson';

export interface Reject {
  file: string;
  table: string;
  row: number;
  /** Physical line of a CSV record that could not be read as a row. */
  line?: number;
  column: string;
  reason: string;
  /** What kind of dead letter it was (Kafka runner), when it was one. */
  kind?: string;
  values?: unknown;
}

export class RejectSink {
  private readonly streams = new Map<string, { fd: number; rows: number }>();
  readonly byReason = new Map<string, number>();
  private readonly locators = new Map<string, (row: number) => { file: string; row: number }>();
  total = 0;
  constructor(private readonly dir: string) {}

  /** A table read from several files as one numbered relation: its rows are reported in their own file and row. */
  locateRows(table: string, locate: (row: number) => { file: string; row: number }): void {
    this.locators.set(table, locate);
  }

  add(r: Reject): void {
    const locate = this.locators.get(r.table);
    if (locate) r = { ...r, ...locate(r.row) };
    let s = this.streams.get(r.table);
    if (!s) {
      fs.mkdirSync(this.dir, { recursive: true });
      s = { fd: fs.openSync(path.join(this.dir, `${r.table}.jsonl`), 'w'), rows: 0 };
      this.streams.set(r.table, s);
    }
    // Ids beyond 2^53 are bigints: written as JSON numbers with every digit.
    fs.writeSync(s.fd, stringifyJsonExact(r) + '\n');
    s.rows++;
    this.total++;
    const key = `${r.table}.${r.column}: ${r.reason}`;
    this.byReason.set(key, (this.byReason.get(key) ?? 0) + 1);
  }

  /** Rows set aside so far from one table. */
  rowsOf(table: string): number {
    return this.streams.get(table)?.rows ?? 0;
  }

  /** Closes the files; returns them with their row counts. */
  close(): { path: string; rows: number }[] {
    const out: { path: string; rows: number }[] = [];
    for (const [table, s] of [...this.streams.entries()].sort()) {
      fs.fsyncSync(s.fd);
      fs.closeSync(s.fd);
      out.push({ path: path.join(this.dir, `${table}.jsonl`), rows: s.rows });
    }
    this.streams.clear();
    return out;
  }

  summary(): Record<string, number> {
    return Object.fromEntries([...this.byReason.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)));
  }
}

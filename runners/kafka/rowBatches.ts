// Rows of the pretrain and samples topics gathered into output messages (a load's close and
// continuous mode batch alike): a message holds at most ROWS_PER_MESSAGE rows or
// TOKENS_PER_MESSAGE tokens, so a batch stays well under the topics' message size.
import { ROWS_PER_MESSAGE, SequenceRow, TOKENS_PER_MESSAGE } from './streamValues';
import { OutputMessage } from './stage';

export class RowBatches<R extends SequenceRow> {
  private rows: R[] = [];
  private tokens = 0;
  /** Rows added so far (in all messages). */
  added = 0;
  constructor(private readonly message: (rows: R[]) => OutputMessage) {}

  /** Adds a row; returns the batch's message when the row filled it. */
  add(row: R): OutputMessage | null {
    this.rows.push(row);
    this.tokens += row.conceptIds.length;
    this.added++;
    return this.rows.length >= ROWS_PER_MESSAGE || this.tokens >= TOKENS_PER_MESSAGE ? this.take() : null;
  }

  /** The message of the rows gathered so far (null when none), and an empty batch. */
  take(): OutputMessage | null {
    if (this.rows.length === 0) return null;
    const m = this.message(this.rows);
    this.rows = [];
    this.tokens = 0;
    return m;
  }
}

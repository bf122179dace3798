// Progress of long steps: a refreshing line (rows done, rate, ETA) on a terminal, plain log lines
// every few seconds otherwise. Counts only; never row contents.

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

export const consoleLogger: Logger = {
  info: (m) => process.stderr.write(`${m}\n`),
  warn: (m) => process.stderr.write(`warning: ${m}\n`),
};

export const silentLogger: Logger = { info: () => {}, warn: () => {} };

export class Progress {
  private readonly started = Date.now();
  private last = 0;
  private done = 0;
  private readonly tty: boolean;
  constructor(
    private readonly label: string,
    private readonly total: number | null,
    private readonly log: Logger,
    private readonly unit = 'rows',
  ) {
    this.tty = log === consoleLogger && !!process.stderr.isTTY;
  }

  update(done: number): void {
    this.done = done;
    const now = Date.now();
    if (now - this.last < (this.tty ? 250 : 5000)) return;
    this.last = now;
    this.emit(false);
  }

  finish(): number {
    this.emit(true);
    return (Date.now() - this.started) / 1000;
  }

  private emit(final: boolean): void {
    const secs = Math.max((Date.now() - this.started) / 1000, 1e-3);
    const rate = this.done / secs;
    let line = `${this.label}: ${this.done.toLocaleString('en-US')} ${this.unit}`;
    if (this.total) line += ` of ${this.total.toLocaleString('en-US')} (${((100 * this.done) / this.total).toFixed(1)}%)`;
    line += `, ${Math.round(rate).toLocaleString('en-US')} ${this.unit}/s`;
    if (this.total && !final && rate > 0) line += `, ETA ${Math.ceil((this.total - this.done) / rate)}s`;
    if (final) line += `, ${secs.toFixed(1)}s`;
    if (this.tty) process.stderr.write(`\r\x1b[K${line}${final ? '\n' : ''}`);
    else this.log.info(line);
  }
}

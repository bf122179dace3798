// Parquet encoding off the main thread: the runner hands Arrow IPC bytes to a worker, which
// encodes (parquet-wasm, zstd) and writes the file atomically, while the main thread goes on
// transforming the next rows. At most `maxPending` shards wait, which bounds memory.
import * as path from 'node:path';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import * as arrow from 'apache-arrow';
import { WrittenFile, encodeParquetFromIpc, plainColumns, writeFileAtomic } from './parquet';
import { sha256 } from '../transforms/hashing';

interface Job {
  id: number;
  target: string;
  rows: number;
  ipc: Uint8Array;
  plain: string[];
}

/** A failure carries the system error's code and path, so the caller can tell a full disk from a bug. */
type Reply = { id: number; file?: WrittenFile; error?: string; code?: string; path?: string };

if (!isMainThread && parentPort) {
  const port = parentPort;
  port.on('message', (job: Job) => {
    try {
      const bytes = encodeParquetFromIpc(job.ipc, job.plain);
      writeFileAtomic(job.target, bytes);
      port.postMessage({ id: job.id, file: { path: job.target, rows: job.rows, bytes: bytes.length, sha256: sha256(bytes) } } as Reply);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      port.postMessage({ id: job.id, error: err.stack ?? String(e), code: err.code, path: err.path ?? job.target } as Reply);
    }
  });
}

export class ParquetWriterPool {
  private worker: Worker | null = null;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (f: WrittenFile) => void; reject: (e: Error) => void }>();
  private readonly pending: Promise<WrittenFile>[] = [];
  constructor(private readonly maxPending = 2) {}

  private start(): Worker {
    if (!this.worker) {
      this.worker = new Worker(path.join(__dirname, 'parquetWorker.js'));
      this.worker.on('message', (r: Reply) => {
        const w = this.waiting.get(r.id);
        if (!w) return;
        this.waiting.delete(r.id);
        if (r.error) w.reject(Object.assign(new Error(`parquet worker: ${r.error}`), { code: r.code, path: r.path }));
        else w.resolve(r.file!);
      });
      this.worker.on('error', (e) => {
        for (const w of this.waiting.values()) w.reject(e);
        this.waiting.clear();
      });
    }
    return this.worker;
  }

  /** Queues a table (waiting first if too many are queued); `done` resolves when its file is durable. */
  async write(target: string, table: arrow.Table): Promise<{ done: Promise<WrittenFile> }> {
    while (this.pending.length >= this.maxPending) await this.pending.shift();
    const ipc = arrow.tableToIPC(table, 'stream');
    const id = this.nextId++;
    const done = new Promise<WrittenFile>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.start().postMessage({ id, target, rows: table.numRows, ipc, plain: plainColumns(table.schema) } as Job, [ipc.buffer as ArrayBuffer]);
    this.pending.push(done);
    done.catch(() => undefined); // surfaced by the caller's await; avoid an unhandled rejection meanwhile
    return { done };
  }

  async close(): Promise<void> {
    try {
      await Promise.all(this.pending.splice(0));
    } finally {
      await this.terminate();
    }
  }

  /** Stops the worker at once (after a failure elsewhere); queued shards may be lost. */
  async terminate(): Promise<void> {
    if (this.worker) await this.worker.terminate();
    this.worker = null;
  }
}

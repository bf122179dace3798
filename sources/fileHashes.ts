// Hashes of input files, so every artifact can name the exact version of what it was made from.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface FileHash {
  path: string;
  bytes: number;
  sha256: string;
}

export async function hashFile(file: string): Promise<FileHash> {
  const h = createHash('sha256');
  let bytes = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    h.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { path: file, bytes, sha256: h.digest('hex') };
}

export async function hashFiles(files: string[]): Promise<FileHash[]> {
  const out: FileHash[] = [];
  for (const f of [...new Set(files)].sort()) out.push(await hashFile(f));
  return out;
}

/** A file as manifests and artifacts record it: relative to the input folder, never absolute. */
export interface RecordedFile {
  file: string;
  bytes: number;
  sha256: string;
}

/**
 * Hashes of `files` with their paths relative to `input` (a folder, or the folder of an input
 * file such as a DuckDB database), in POSIX form, so outputs name no path of this machine.
 */
export async function recordedFiles(files: string[], input: string): Promise<RecordedFile[]> {
  const base = fs.statSync(input).isDirectory() ? input : path.dirname(input);
  return (await hashFiles(files)).map((h) => ({ file: path.relative(base, h.path).split(path.sep).join('/'), bytes: h.bytes, sha256: h.sha256 }));
}

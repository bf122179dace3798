// Hashes of input files, so every artifact can name the exact version of what it was made from.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';

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

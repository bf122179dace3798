// Content hashes of artifacts (canonical JSON, sorted keys), so outputs can name the exact
// version of what they were made from.
import { createHash } from 'node:crypto';

export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
      : v,
  );
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function contentHash(value: unknown): string {
  return `sha256:${sha256(canonicalJson(value))}`;
}

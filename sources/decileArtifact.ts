// Reads a decile artifact (OUT/artifacts/deciles.json of a `medrep run`) for the consumers that
// bind to a fitted run: the stream runner and the representation trainers. One reader, so both
// refuse the same files with the same line.
import * as fs from 'node:fs';
import type { DecileArtifact } from '../transforms/deciles';
import { UserError } from '../common/errors';

export function readDecileArtifact(file: string): DecileArtifact {
  let a: DecileArtifact;
  try {
    a = JSON.parse(fs.readFileSync(file, 'utf8')) as DecileArtifact;
  } catch (e) {
    throw new UserError(`deciles file ${file}: ${(e as Error).message}`);
  }
  if (!a || a.kind !== 'medrep.deciles' || !Array.isArray(a.groups) || typeof a.version !== 'string') {
    throw new UserError(`deciles file ${file}: not a medrep.deciles artifact (kind ${String(a?.kind)})`);
  }
  a.groups.forEach((g, i) => {
    if (!Number.isSafeInteger(g.concept_id)) throw new UserError(`deciles file ${file}: groups[${i}].concept_id is not an integer id`);
  });
  return a;
}

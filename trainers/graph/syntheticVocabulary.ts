// A synthetic Athena-layout vocabulary of any size, for the bounded-memory test and the
// full-size graph-build benchmark (about 7.7 million concepts, tens of millions of links).
// Deterministic (seeded), written streaming.
import * as fs from 'fs';
import * as path from 'path';
import { Rng } from '../random';

export interface SyntheticVocabularyOptions {
  concepts: number;
  /** Links per concept on average; each link is written in both directions (as Athena does). */
  linksPerConcept: number;
  /** Every hubEvery-th concept gets hubLinks extra links (to exercise the >100 rule). */
  hubEvery?: number;
  hubLinks?: number;
  seed?: number;
}

const DOMAINS = ['Condition', 'Drug', 'Measurement', 'Procedure', 'Observation'];

/** Concept id of the i-th synthetic concept (sparse, unordered in the file like real ids). */
export function syntheticConceptId(i: number): number {
  return 1_000_000 + i * 3;
}

class BufferedWriter {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly fd: number) {}
  write(s: string): void {
    this.parts.push(s);
    this.size += s.length;
    if (this.size > 1 << 22) this.flush();
  }
  flush(): void {
    if (this.parts.length) fs.writeSync(this.fd, this.parts.join(''));
    this.parts = [];
    this.size = 0;
  }
}

export function writeSyntheticVocabulary(dir: string, o: SyntheticVocabularyOptions): { conceptRows: number; relationshipRows: number } {
  fs.mkdirSync(dir, { recursive: true });
  const rng = Rng.seeded(o.seed ?? 42);
  const hubEvery = o.hubEvery ?? 50_000;
  const hubLinks = o.hubLinks ?? 150;
  const cfd = fs.openSync(path.join(dir, 'CONCEPT.csv'), 'w');
  const cw = new BufferedWriter(cfd);
  cw.write('concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_class_id\tstandard_concept\tconcept_code\tvalid_start_date\tvalid_end_date\tinvalid_reason\n');
  // written in a scrambled order: the builder must not rely on sorted files
  const stride = 7_919;
  for (let k = 0; k < o.concepts; k++) {
    const i = (k * stride) % o.concepts;
    cw.write(`${syntheticConceptId(i)}\tSynthetic concept ${i}\t${DOMAINS[i % 5]}\tSYN\tClass\tS\tS${i}\t19700101\t20991231\t\n`);
  }
  cw.flush();
  fs.closeSync(cfd);
  if (o.concepts % stride === 0) throw new Error('concept count must not be a multiple of the scramble stride');

  const rfd = fs.openSync(path.join(dir, 'CONCEPT_RELATIONSHIP.csv'), 'w');
  const rw = new BufferedWriter(rfd);
  rw.write('concept_id_1\tconcept_id_2\trelationship_id\tvalid_start_date\tvalid_end_date\tinvalid_reason\n');
  let rows = 0;
  const link = (a: number, b: number): void => {
    const ia = syntheticConceptId(a);
    const ib = syntheticConceptId(b);
    rw.write(`${ia}\t${ib}\tIs a\t19700101\t20991231\t\n${ib}\t${ia}\tSubsumes\t19700101\t20991231\t\n`);
    rows += 2;
  };
  for (let i = 0; i < o.concepts; i++) {
    const n = Math.floor(o.linksPerConcept) + (rng.next() < o.linksPerConcept % 1 ? 1 : 0);
    for (let k = 0; k < n; k++) link(i, rng.int(o.concepts));
    if (i % hubEvery === 0) for (let k = 0; k < hubLinks; k++) link(i, rng.int(o.concepts));
  }
  rw.flush();
  fs.closeSync(rfd);
  return { conceptRows: o.concepts, relationshipRows: rows };
}

// End-to-end check on a real vocabulary (default ../shared/omop/synthea27nj): fits deciles on
// the training split of MEASUREMENT, runs `medrep train representations` with its defaults,
// trains GCL without KD on the same text vectors, and reports mean cosine of related vs random
// pairs (text-only, MedRep, GCL without KD) and each graph model's distance to the text vectors.
// Writes bench/results/representations-quality.json.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DuckDBInstance } from '@duckdb/node-api';
import { DecileFitter } from '../transforms/deciles';
import { splitOf } from '../transforms/splits';
import { trainRepresentations } from '../trainers/representations/trainRepresentations';
import { trainGrace, DEFAULT_GRACE } from '../trainers/graph/grace';
import { relatedPairs, pairSummary, meanRowCosine, meanKl } from '../trainers/representations/evaluate';

async function fitDeciles(omopDir: string, file: string): Promise<number> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  const m = fs.readdirSync(omopDir).find((f) => f.toLowerCase() === 'measurement.csv');
  if (!m) throw new Error(`${omopDir} has no MEASUREMENT.csv`);
  const r = await c.runAndReadAll(`SELECT person_id::BIGINT, measurement_concept_id::BIGINT, unit_concept_id::VARCHAR, value_as_number::DOUBLE
    FROM read_csv('${path.join(omopDir, m)}', header=true) WHERE value_as_number IS NOT NULL`);
  const f = new DecileFitter();
  for (const [p, cid, u, v] of r.getRows()) if (splitOf(p as bigint) === 'pretrain_train') f.add(Number(cid), u as string | null, v as number);
  const a = f.fit();
  fs.writeFileSync(file, JSON.stringify(a));
  c.closeSync();
  db.closeSync();
  return a.groups.length;
}

async function main(): Promise<void> {
  const vocab = process.argv[2] ?? path.join(__dirname, '../../../shared/omop/synthea27nj');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'medrep-quality-'));
  const decilesFile = path.join(out, 'deciles.json');
  const groups = await fitDeciles(vocab, decilesFile);
  const t0 = Date.now();
  const r = await trainRepresentations({ vocab, out: path.join(out, 'repr'), deciles: decilesFile });
  const seconds = (Date.now() - t0) / 1000;
  const g = r.graphObject;
  const dim = r.text.dim;
  const noKd = trainGrace(g, r.textVectors, dim, { ...DEFAULT_GRACE, seed: 7, distill: false, log: (l) => process.stderr.write(l.replace('[gcl]', '[gcl-no-kd]') + '\n') });
  const pairs = await relatedPairs(vocab, g);
  const result = {
    vocabulary: vocab,
    decileGroups: groups,
    graph: r.graph,
    textSources: r.textSources,
    trainSeconds: seconds,
    mlm: { epochs: r.mlm.epochs, bestEpoch: r.mlm.bestEpoch, tokensPerSecond: r.mlm.tokensProcessed / r.mlm.seconds, lastValidation: r.mlm.history.at(-1)?.validation },
    gcl: { epochs: r.gcl.epochs, bestEpoch: r.gcl.bestEpoch, nodesPerSecond: r.gcl.nodesProcessed / r.gcl.seconds },
    meanCosine: {
      text: pairSummary(r.textVectors, dim, pairs),
      medrep: pairSummary(r.gcl.vectors, dim, pairs),
      gclWithoutKd: pairSummary(noKd.vectors, dim, pairs),
    },
    distanceToText: {
      medrepWithKd: { meanCosine: meanRowCosine(r.gcl.vectors, r.textVectors, dim), meanKl: meanKl(r.textVectors, r.gcl.vectors, dim) },
      gclWithoutKd: { meanCosine: meanRowCosine(noKd.vectors, r.textVectors, dim), meanKl: meanKl(r.textVectors, noKd.vectors, dim) },
    },
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
  const dir = path.join(__dirname, '../../bench/results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'representations-quality.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(JSON.stringify(result, null, 2));
  fs.rmSync(out, { recursive: true, force: true });
}

main().catch((e) => { console.error(e); process.exit(1); });

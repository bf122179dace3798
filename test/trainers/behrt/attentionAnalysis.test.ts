// `medrep analyze attention` on a planted case: the label is caused by one concept, among 30
// distractors that are exactly as frequent; after finetuning, the counted [CLS] attention puts
// that concept first. The LLM path runs against a local stub server, as a protocol fixture only.
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { AddressInfo } from 'net';
import { Rng } from '../../../trainers/random';
import { splitOf } from '../../../transforms/splits';
import type { Sequence } from '../../../trainers/behrt/data';
import { runCommandLine } from '../../../cli';
import { manifestEntry, writeRepresentations, writeSequenceShard } from '../../helpers/ehrFixtures';
import { medrep, medrepAsync } from '../../helpers/cli';
import { decodePng } from '../../helpers/png';
import { tempDir } from '../../helpers';
import { tf } from '../../../trainers/tf';
import { initBackend } from '../../../trainers/backend';
import { Behrt } from '../../../trainers/behrt/model';
import { makeBatch } from '../../../trainers/behrt/batch';
import { DEFAULT_MODEL } from '../../../trainers/behrt/config';

const CAUSE = 1001;
// ordinary concepts of the fixture's representation table (conditions 100-119, drugs 200-209)
const DISTRACTORS = [...Array.from({ length: 20 }, (_, k) => 100 + k), ...Array.from({ length: 10 }, (_, k) => 200 + k)];

/** Each person has the cause and each distractor with probability 1/2, in random order; label = has the cause. */
function plantedSequences(persons: number, seed: number): Sequence[] {
  const rng = Rng.fromState(seed);
  const out: Sequence[] = [];
  for (let p = 1; p <= persons; p++) {
    const concepts = [CAUSE, ...DISTRACTORS].filter(() => rng.next() < 0.5);
    rng.shuffle(concepts);
    const n = concepts.length;
    const personId = 5000 + p;
    out.push({
      personId, split: splitOf(personId), label: concepts.includes(CAUSE),
      conceptIds: [-3, p % 2 ? 8507 : 8532, ...concepts], deciles: Array(n + 2).fill(null),
      ages: [0, 0, ...Array(n).fill(60)], segments: [0, 0, ...concepts.map((_, i) => 1 + Math.floor(i / 8))],
      recordRanks: [0, 0, ...concepts.map((_, i) => i % 8)], domains: [0, 0, ...concepts.map((c) => (c < 200 || c === CAUSE ? 1 : 2))],
    });
  }
  return out;
}

function writeConcepts(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  const rows = [
    'concept_id,concept_name,domain_id,vocabulary_id,concept_class_id,standard_concept,concept_code,valid_start_date,valid_end_date,invalid_reason',
    `${CAUSE},"Planted cause, the label's reason",Condition,SNOMED,Clinical Finding,S,C1,1970-01-01,2099-12-31,`,
    ...DISTRACTORS.map((c) => `${c},Distractor ${c},${c < 200 ? 'Condition' : 'Drug'},SNOMED,Clinical Finding,S,D${c},1970-01-01,2099-12-31,`),
  ];
  fs.writeFileSync(path.join(dir, 'CONCEPT.csv'), rows.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'CONCEPT_RELATIONSHIP.csv'), 'concept_id_1,concept_id_2,relationship_id,valid_start_date,valid_end_date,invalid_reason\n');
}

const readCsv = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n');
const MODEL = ['--hidden', '16', '--layers', '1', '--heads', '2', '--intermediate', '32', '--max-len', '40', '--batch-size', '16', '--backend', 'cpu'];

describe('BEHRT [CLS] attention of the last layer', () => {
  it('is softmax(q_CLS k^T / sqrt(dh)) per head over the last layer\'s input, averaged over heads; padding gets 0', async () => {
    await initBackend('cpu');
    const cfg = { ...DEFAULT_MODEL, hidden: 8, layers: 2, heads: 2, intermediate: 8, maxLen: 6, segmentVocab: 4, recordRankVocab: 4 };
    const m = new Behrt(cfg, { vocabSize: 20, seed: 2 });
    const item = (n: number) => ({ tokens: Int32Array.from({ length: n }, (_, i) => (i === 0 ? 3 : 8 + i)), ages: new Int32Array(n), segments: new Int32Array(n), recordRanks: new Int32Array(n), domains: new Int32Array(n) });
    const b = makeBatch([item(6), item(4)]);
    const got = m.clsAttention(b).arraySync() as number[][];
    // By hand: the last layer's input is layer 0's output; the model computes it with encode() of a 1-layer copy.
    const one = new Behrt({ ...cfg, layers: 1 }, { vocabSize: 20, seed: 2 });
    for (const [n, v] of one.params) v.assign(m.params.get(n)!);
    const x = tf.reshape(one.encode(b, false), [12, 8]);
    const p = (n: string) => m.params.get(n)!;
    const q = tf.add(tf.matMul(x, p('l1.q.w') as tf.Tensor2D), p('l1.q.b')).arraySync() as number[][];
    const k = tf.add(tf.matMul(x, p('l1.k.w') as tf.Tensor2D), p('l1.k.b')).arraySync() as number[][];
    for (const [row, len] of [[0, 6], [1, 4]]) {
      const want = new Array(6).fill(0);
      for (const h of [0, 1]) {
        const scores = Array.from({ length: len }, (_, j) => q[row * 6].slice(h * 4, h * 4 + 4).reduce((a, v, d) => a + v * k[row * 6 + j][h * 4 + d], 0) / 2);
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, c) => a + c, 0);
        e.forEach((v, j) => (want[j] += v / z / 2));
      }
      got[row].forEach((v, j) => assert.ok(Math.abs(v - want[j]) < 1e-5, `row ${row} key ${j}: ${v} vs ${want[j]}`));
    }
    assert.equal(got[1][4], 0);
    assert.equal(got[1][5], 0);
    m.dispose();
    one.dispose();
  });
});

describe('medrep analyze attention', function () {
  this.timeout(900_000);
  let dir: string;
  let site: string;
  let vocab: string;
  let vanilla: string;
  let frozen: string;
  let table: string;

  before(async () => {
    dir = tempDir('attention');
    site = path.join(dir, 'site');
    vocab = path.join(dir, 'vocab');
    writeConcepts(vocab);
    const seqs = plantedSequences(400, 11);
    await writeSequenceShard(path.join(site, 'samples', 'cause', 'part-0.parquet'), seqs);
    fs.writeFileSync(path.join(site, 'manifest.json'), JSON.stringify({ shards: [manifestEntry(site, 'samples/cause/part-0.parquet', 'samples/cause', seqs.length)] }));
    table = path.join(dir, 'reps.parquet');
    await writeRepresentations(table, 8, [0], 3);
    vanilla = path.join(dir, 'model-vanilla');
    frozen = path.join(dir, 'model-frozen');
    const quiet = console.log;
    console.log = () => undefined;
    try {
      await runCommandLine(['train', 'ehr', '--shards', site, '--task', 'cause', '--seeds', '1,2', '--epochs', '12', '--out', vanilla, ...MODEL]);
      await runCommandLine(['train', 'ehr', '--shards', site, '--task', 'cause', '--seeds', '1', '--epochs', '4', '--embeddings', 'medrep', '--representations', table, '--out', frozen, ...MODEL]);
    } finally {
      console.log = quiet;
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('finds the concept that causes the label first in the counted [CLS] attention, and says there is no LLM endpoint', () => {
    // the models did learn the task (otherwise attention says nothing)
    const results = JSON.parse(fs.readFileSync(path.join(vanilla, 'results.json'), 'utf8'));
    assert.ok(results.rows[0].tasks.cause.auroc > 0.9, `AUROC ${results.rows[0].tasks.cause.auroc}`);
    const out = path.join(dir, 'analysis');
    const r = medrep(['analyze', 'attention', '--model', vanilla, '--shards', site, '--task', 'cause', '--vocab', vocab, '--out', out, '--per-person', '3', '--top', '10', '--backend', 'cpu']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /no LLM endpoint configured/);
    assert.equal(r.stdout.trim().split('\n').length, 1);
    const lines = readCsv(path.join(out, 'attention-vanilla.csv'));
    assert.equal(lines[0], 'concept_id,concept_name,count');
    assert.equal(lines.length, 11);
    const top10 = lines.slice(1).map((l) => Number(l.split(',')[0]));
    assert.ok(top10.includes(CAUSE), `top 10: ${top10.join(' ')}`);
    assert.equal(top10[0], CAUSE, `the cause is not the most counted: ${lines.slice(1, 4).join(' | ')}`);
    assert.equal(lines[1], `${CAUSE},"Planted cause, the label's reason",${lines[1].split(',').pop()}`);
    // counted over 400 persons x 2 seeds: each (person, seed) counts a concept once at most
    const counts = lines.slice(1).map((l) => Number(l.split(',').pop()));
    assert.ok(counts[0] <= 800 && counts.every((c, i) => i === 0 || c <= counts[i - 1]));
    const persons = plantedSequences(400, 11).filter((s) => s.label).length;
    // among the 3 most attended concepts of (nearly) every positive person in both seeds; uniform
    // attention over the ~16 concepts of a person would give it about 2 x persons x 3/16
    assert.ok(counts[0] >= 0.9 * 2 * persons, `cause counted ${counts[0]} times, ${persons} persons have it (x 2 seeds)`);
    const meta = JSON.parse(fs.readFileSync(path.join(out, 'attention.json'), 'utf8'));
    assert.deepEqual(meta.arms.map((a: { arm: string; seeds: number[]; persons: number }) => [a.arm, a.seeds, a.persons]), [['vanilla', [1, 2], 400]]);
    assert.equal(meta.relevance, null);
    assert.ok(!JSON.stringify(meta).includes(dir), 'attention.json records a machine path');
  });

  it('refuses a model folder without checkpoints of the task, in one line (exit 2)', () => {
    const r = medrep(['analyze', 'attention', '--model', site, '--shards', site, '--task', 'cause', '--vocab', vocab, '--out', path.join(dir, 'none')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^medrep: medrep analyze attention: no finetuned cause checkpoint under .*\n$/);
  });

  it('with an endpoint: one relevance prompt per concept naming it, answers cached for the next run, counts per arm and a figure', async () => {
    const prompts: string[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        const prompt = JSON.parse(body).messages[1].content as string;
        prompts.push(prompt);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ choices: [{ message: { content: prompt.includes('Planted cause') ? 'High.' : 'low' } }] }));
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const out = path.join(dir, 'relevance');
    const args = ['analyze', 'attention', '--model', `${vanilla},${frozen}`, '--representations', table, '--shards', site, '--task', 'cause',
      '--vocab', vocab, '--out', out, '--per-person', '3', '--top', '10', '--endpoint', url, '--backend', 'cpu'];
    try {
      const first = await medrepAsync(args).done;
      assert.equal(first.status, 0, first.stderr);
      const asked = prompts.length;
      assert.ok(asked >= 10 && asked <= 20, `${asked} prompts for two top-10 lists`);
      for (const name of ['Planted cause, the label\'s reason', 'Distractor']) assert.ok(prompts.some((p) => p.includes(`"${name}`)), `no prompt names ${name}`);
      assert.ok(prompts.every((p) => /low, moderate or high/.test(p)));
      const vanillaRows = readCsv(path.join(out, 'attention-vanilla.csv'));
      assert.equal(vanillaRows[0], 'concept_id,concept_name,count,relevance');
      assert.match(vanillaRows[1], /,high$/);
      const meta = JSON.parse(fs.readFileSync(path.join(out, 'attention.json'), 'utf8'));
      const byArm = Object.fromEntries(meta.arms.map((a: { arm: string; relevance: Record<string, number> }) => [a.arm, a.relevance]));
      assert.deepEqual(Object.keys(byArm).sort(), ['medrep', 'vanilla']);
      assert.deepEqual(byArm.vanilla, { low: 9, moderate: 0, high: 1, unanswered: 0 });
      assert.equal(byArm.medrep.low + byArm.medrep.high, readCsv(path.join(out, 'attention-medrep.csv')).length - 1);
      assert.match(first.stdout, /vanilla: low 9, moderate 0, high 1, unanswered 0/);
      // Figure 4: the PNG decodes at the size attention.json declares, its SVG names axes, arms and levels.
      const fig = meta.relevance.figure;
      assert.deepEqual([fig.png, fig.svg], ['relevance.png', 'relevance.svg']);
      assert.deepEqual(decodePng(fs.readFileSync(path.join(out, fig.png))), { width: fig.width, height: fig.height });
      const svg = fs.readFileSync(path.join(out, fig.svg), 'utf8');
      for (const t of ['embeddings', 'concepts', 'relevance', 'vanilla', 'medrep', 'low', 'moderate', 'high']) assert.ok(svg.includes(`>${t}</text>`), `relevance.svg has no text "${t}"`);
      // One bar per arm and level, each as tall as its count.
      assert.equal(svg.match(/aria-roledescription="bar"/g)?.length, 6);
      const bars = [...svg.matchAll(/aria-label="([^"]*)" role="graphics-symbol" aria-roledescription="bar"/g)].map((m) => m[1]);
      assert.ok(bars.includes('embeddings: vanilla; concepts: 1; level: high; relevance: high'), `no bar for the one high-relevance vanilla concept: ${bars.join(' | ')}`);
      const again = await medrepAsync(args).done;
      assert.equal(again.status, 0, again.stderr);
      assert.equal(prompts.length, asked, 'the second run asked the endpoint again instead of reading its cache');
      assert.deepEqual(readCsv(path.join(out, 'attention-vanilla.csv')), vanillaRows);
    } finally {
      server.close();
    }
  });
});

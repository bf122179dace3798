// Which concepts a finetuned model looks at (the MedRep paper's qualitative analysis): the
// attention of [CLS] in the last layer, per person the concepts it weighs most, counted over
// persons and seeds. A concept's weight in a person is its largest [CLS] attention (averaged over
// heads) at any of its positions in any of the person's samples: a concept repeated many times
// does not outweigh one that is attended strongly once.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FIRST_CONCEPT_INDEX } from '../../transforms/tokens';
import { makeBatch, disposeBatch } from './batch';
import { loadWeights, readCheckpointMeta, resolveCheckpoint, type CheckpointMeta } from './checkpoint';
import type { Sequence } from './data';
import { Behrt } from './model';
import { frozenTableFor, hasVector, type Representations } from './representations';
import { encodeSequence, Vocabulary } from './vocab';

export interface FinetunedModel {
  /** The arm's folder name (the embeddings of `train ehr`, the arm of `experiment external`). */
  arm: string;
  seed: number;
  checkpoint: string;
  meta: CheckpointMeta;
}

function finetunedAt(dir: string, arm: string | null, seedHint: number | null): FinetunedModel | null {
  const ckpt = resolveCheckpoint(dir, 'BEST') ?? resolveCheckpoint(dir);
  if (!ckpt) return null;
  const meta = readCheckpointMeta(ckpt);
  if (meta.kind !== 'finetune') return null;
  return { arm: arm ?? meta.embeddings, seed: seedHint ?? meta.seed, checkpoint: ckpt, meta };
}

/**
 * The finetuned checkpoints of `task` in a model folder: a `train ehr` or `experiment external`
 * output (checkpoints/<arm>/<model>/seed-<n>/<task>/, or checkpoints/<arm>/seed-<n>/<task>/ as
 * written before the EHR model had a name; best validation epoch), or one checkpoint folder.
 * A model other than BEHRT is counted as its own arm, "<arm> <model>".
 */
export function findFinetuned(dir: string, task: string): FinetunedModel[] {
  const root = join(dir, 'checkpoints');
  if (!existsSync(root)) {
    const one = finetunedAt(dir, null, null);
    return one && one.meta.task === task ? [one] : [];
  }
  const isSeed = (s: string) => /^seed-\d+$/.test(s);
  const out: FinetunedModel[] = [];
  const seedsUnder = (dir: string, arm: string) => {
    for (const seedDir of readdirSync(dir).filter(isSeed).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))) {
      const taskDir = join(dir, seedDir, task);
      if (!existsSync(taskDir)) continue;
      const m = finetunedAt(taskDir, arm, Number(seedDir.slice(5)));
      if (m) out.push(m);
    }
  };
  for (const arm of readdirSync(root).sort()) {
    const armDir = join(root, arm);
    seedsUnder(armDir, arm);
    for (const model of readdirSync(armDir).filter((m) => !isSeed(m)).sort()) {
      if (statSync(join(armDir, model)).isDirectory()) seedsUnder(join(armDir, model), model === 'behrt' ? arm : `${arm} ${model}`);
    }
  }
  return out;
}

/**
 * The model of a checkpoint, ready to read `seqs`: for frozen embeddings, the vocabulary grows by
 * the tokens of `seqs` that have vectors (as in evaluation), keeping the trained indices.
 */
export function loadFinetuned(m: FinetunedModel, reps: Representations | undefined, seqs: Sequence[]): { model: Behrt; vocab: Vocabulary } {
  const trained = new Vocabulary(m.meta.vocab);
  const frozen = m.meta.embeddings !== 'vanilla';
  if (frozen && !reps) throw new Error(`${m.checkpoint}: uses frozen ${m.meta.embeddings} vectors; give their representations file`);
  const model = new Behrt(m.meta.model, { vocabSize: trained.size, frozen: frozen ? frozenTableFor(trained, reps!) : undefined, seed: m.meta.seed });
  model.addClassifier(m.meta.outputs ?? 1, m.meta.seed);
  loadWeights(m.checkpoint, model, null);
  if (!frozen) return { model, vocab: trained };
  const vocab = trained.extendedWith(Vocabulary.fromSequences(seqs, hasVector(reps!.lookup)));
  model.setFrozenTable(frozenTableFor(vocab, reps!));
  return { model, vocab };
}

/** Per person (by id), the `perPerson` concepts with the largest [CLS] attention, largest first (ties: smaller concept id). */
export function topConceptsPerPerson(model: Behrt, vocab: Vocabulary, seqs: Sequence[], perPerson: number, batchSize = 32): Map<string, number[]> {
  const weights = new Map<string, Map<number, number>>();
  for (let s = 0; s < seqs.length; s += batchSize) {
    const part = seqs.slice(s, s + batchSize);
    const encoded = part.map((q) => encodeSequence(q, vocab, model.cfg));
    const batch = makeBatch(encoded);
    const att = model.clsAttention(batch);
    const probs = att.dataSync() as Float32Array;
    const L = batch.tokens.shape[1];
    att.dispose();
    disposeBatch(batch);
    encoded.forEach((e, i) => {
      const person = String(part[i].personId);
      let w = weights.get(person);
      if (!w) weights.set(person, (w = new Map()));
      for (let j = 0; j < e.tokens.length; j++) {
        const index = e.tokens[j];
        if (index < FIRST_CONCEPT_INDEX) continue; // [CLS], [SEP], [UNK], gender
        const concept = vocab.tokens[index - FIRST_CONCEPT_INDEX].conceptId;
        const p = probs[i * L + j];
        if (p > (w.get(concept) ?? -1)) w.set(concept, p);
      }
    });
  }
  const out = new Map<string, number[]>();
  for (const [person, w] of weights) {
    const ranked = [...w].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, perPerson).map(([c]) => c);
    out.set(person, ranked);
  }
  return out;
}

export interface CountedConcept {
  conceptId: number;
  /** (person, seed) pairs that have the concept among their top concepts. */
  count: number;
}

/** Adds one count per person and concept of its top list; returns the `top` most counted (ties: smaller concept id). */
export function countTopConcepts(perSeed: Map<string, number[]>[], top: number): CountedConcept[] {
  const counts = new Map<number, number>();
  for (const perPerson of perSeed) for (const concepts of perPerson.values()) for (const c of concepts) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0]).slice(0, top).map(([conceptId, count]) => ({ conceptId, count }));
}

/** A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break. */
export function csvField(v: string | number): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

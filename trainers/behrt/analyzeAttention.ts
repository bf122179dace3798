// `medrep analyze attention`: the concepts finetuned models attend to from [CLS] in their last
// layer, per arm counted over persons and seeds, written with their names as CSV; with an LLM
// endpoint also each concept's relevance to the task and the count per level and arm (Figure 4).
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../common/errors';
import { SHIPPED_TASK_DIR } from '../../sources/taskFiles';
import { sha256 } from '../../transforms/hashing';
import { BackendPreference, initBackend } from '../backend';
import { streamConcepts } from '../../sources/vocabularyFiles';
import { loadVocabularyIndex } from '../representations/lookup';
import { countTopConcepts, csvField, findFinetuned, loadFinetuned, topConceptsPerPerson, type CountedConcept, type FinetunedModel } from './attentionAnalysis';
import { loadRepresentations, type Representations } from './representations';
import { writeFigure, type FigureFiles } from '../../figures/figureFiles';
import { countRelevance, rateRelevance, relevanceChart, RELEVANCE_LEVELS, type RelevanceCounts, type RelevanceLevel } from './relevance';
import { loadSiteTask } from './site';

const COMMAND = 'medrep analyze attention';

export interface AnalyzeOptions {
  /** `train ehr` / `experiment external` output folders (or checkpoint folders). */
  models: string[];
  shards: string;
  task: string;
  vocab: string;
  out: string;
  representations?: string[];
  splits?: string[];
  perPerson?: number;
  top?: number;
  endpoint?: string;
  endpointModel?: string;
  endpointApiKey?: string;
  cacheFile?: string;
  backend?: BackendPreference;
  log?: (line: string) => void;
}

export interface ArmAnalysis {
  arm: string;
  seeds: number[];
  persons: number;
  csv: string;
  concepts: (CountedConcept & { name: string; relevance?: RelevanceLevel | null })[];
  relevance?: RelevanceCounts;
}

/** A file name part from an arm name: "MedRep (paper) without KD" -> "medrep-paper-without-kd". */
export const armSlug = (arm: string) => arm.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'arm';

function writeAtomic(file: string, data: string | Buffer): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/** The outcome in words for the prompt: the first sentence of the shipped task file's description, else the task name. */
function taskInWords(task: string): string {
  const file = join(SHIPPED_TASK_DIR, `${task}.json`);
  if (!existsSync(file)) return task.replace(/_/g, ' ');
  const d = (JSON.parse(readFileSync(file, 'utf8')) as { description?: string }).description;
  return d ? d.split(/\.\s/)[0].replace(/\.$/, '') : task.replace(/_/g, ' ');
}

const fileHash = (f: string) => `sha256:${sha256(readFileSync(f))}`;

/** Representation tables a model folder holds (experiment external writes them in representations*\/). */
function tablesIn(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && d.name.startsWith('representations'))
    .flatMap((d) => readdirSync(join(dir, d.name)).filter((f) => f.endsWith('.parquet')).map((f) => join(dir, d.name, f)));
}

/**
 * The frozen arms' tables: the one whose hash a checkpoint recorded, among --representations and
 * the model folders' own, each read once (with the vocabulary's fallbacks).
 */
async function frozenTables(o: AnalyzeOptions, models: FinetunedModel[]): Promise<(m: FinetunedModel) => Promise<Representations | undefined>> {
  const candidates = [...(o.representations ?? []), ...o.models.flatMap((d) => tablesIn(d))];
  for (const f of o.representations ?? []) if (!existsSync(f)) throw new UserError(`${COMMAND}: --representations ${f} does not exist`);
  const byHash = new Map<string, string>();
  const vocabulary = models.some((m) => m.meta.embeddings !== 'vanilla') ? await loadVocabularyIndex(o.vocab, { maxAncestorLevels: 20 }) : null;
  const loaded = new Map<string, Representations>();
  return async (m: FinetunedModel): Promise<Representations | undefined> => {
    if (m.meta.embeddings === 'vanilla') return undefined;
    const want = m.meta.representationsHash!;
    if (!loaded.has(want)) {
      for (const f of candidates) if (!byHash.has(f)) byHash.set(f, fileHash(f));
      const file = candidates.find((f) => byHash.get(f) === want);
      if (!file) throw new UserError(`${COMMAND}: ${m.checkpoint} reads frozen vectors ${want}; no --representations file has that hash`);
      loaded.set(want, await loadRepresentations(file, { vocab: vocabulary }));
    }
    return loaded.get(want);
  };
}

/** Asks the endpoint how relevant each counted concept is to the task; adds the levels to the arms, a line per arm, and draws the figure. */
async function rateArms(
  o: AnalyzeOptions, endpoint: string, arms: ArmAnalysis[], wanted: Set<number>, names: Map<number, { name: string; domain: string }>,
  lines: string[], log: (l: string) => void,
): Promise<FigureFiles> {
  const task = taskInWords(o.task);
  const cacheFile = o.cacheFile ?? join(o.out, 'relevance-cache.jsonl');
  const rated = [...wanted].sort((a, b) => a - b).map((id) => ({ conceptId: id, name: names.get(id)?.name || String(id), domain: names.get(id)?.domain ?? 'concept' }));
  const levels = await rateRelevance(task, rated, { endpoint, model: o.endpointModel, apiKey: o.endpointApiKey, cacheFile, log });
  for (const a of arms) {
    for (const c of a.concepts) c.relevance = levels.get(c.conceptId) ?? null;
    const counts = countRelevance(a.concepts.map((c) => c.relevance ?? null));
    a.relevance = counts;
    lines.push(`${a.arm}: ${RELEVANCE_LEVELS.map((l) => `${l} ${counts[l]}`).join(', ')}, unanswered ${counts.unanswered}`);
  }
  return writeFigure(o.out, 'relevance', await relevanceChart(arms.map((a) => ({ arm: a.arm, counts: a.relevance! })), taskInWords(o.task)));
}

export async function analyzeAttention(o: AnalyzeOptions): Promise<{ arms: ArmAnalysis[]; summary: string }> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const perPerson = o.perPerson ?? 100;
  const top = o.top ?? 100;
  const models = o.models.flatMap((dir) => {
    if (!existsSync(dir)) throw new UserError(`${COMMAND}: --model ${dir} does not exist`);
    return findFinetuned(dir, o.task).map((m) => ({ ...m, dir }));
  });
  if (models.length === 0) throw new UserError(`${COMMAND}: no finetuned ${o.task} checkpoint under ${o.models.join(', ')} (checkpoints/<arm>/<model>/seed-<n>/${o.task}/)`);
  await initBackend(o.backend);
  const site = await loadSiteTask(o.shards, o.task);
  const seqs = o.splits ? site.sequences.filter((s) => o.splits!.includes(s.split)) : site.sequences;
  if (seqs.length === 0) throw new UserError(`${COMMAND}: ${o.shards}: no ${o.task} samples in splits ${o.splits!.join(', ')}`);

  const repsFor = await frozenTables(o, models);

  const armNames = [...new Set(models.map((m) => m.arm))];
  const counted = new Map<string, { seeds: number[]; persons: number; top: CountedConcept[] }>();
  for (const arm of armNames) {
    const perSeed: Map<string, number[]>[] = [];
    const seeds: number[] = [];
    for (const m of models.filter((x) => x.arm === arm)) {
      const { model, vocab } = loadFinetuned(m, await repsFor(m), seqs);
      perSeed.push(topConceptsPerPerson(model, vocab, seqs, perPerson));
      model.dispose();
      seeds.push(m.seed);
      log(`[attention] ${arm} seed ${m.seed}: ${perSeed[perSeed.length - 1].size} persons, ${seqs.length} samples`);
    }
    counted.set(arm, { seeds, persons: perSeed[0]?.size ?? 0, top: countTopConcepts(perSeed, top) });
  }

  const wanted = new Set([...counted.values()].flatMap((c) => c.top.map((t) => t.conceptId)));
  const names = new Map<number, { name: string; domain: string }>();
  await streamConcepts(o.vocab, (c) => { if (wanted.has(c.concept_id)) names.set(c.concept_id, { name: c.concept_name, domain: c.domain_id }); });

  const arms: ArmAnalysis[] = [];
  for (const [arm, c] of counted) {
    const csv = `attention-${armSlug(arm)}.csv`;
    arms.push({ arm, seeds: c.seeds, persons: c.persons, csv, concepts: c.top.map((t) => ({ ...t, name: names.get(t.conceptId)?.name ?? '' })) });
  }
  const lines: string[] = [];
  let figure: FigureFiles | null = null;
  if (o.endpoint) figure = await rateArms(o, o.endpoint, arms, wanted, names, lines, log);
  for (const a of arms) {
    const header = o.endpoint ? 'concept_id,concept_name,count,relevance' : 'concept_id,concept_name,count';
    const rows = a.concepts.map((c) => [c.conceptId, csvField(c.name), c.count, ...(o.endpoint ? [c.relevance ?? ''] : [])].join(','));
    writeAtomic(join(o.out, a.csv), [header, ...rows].join('\n') + '\n');
  }
  const record = {
    command: 'analyze attention', task: o.task, perPerson, top, samples: seqs.length,
    splits: o.splits ?? null,
    // versions, not machine paths: checkpoints by weights hash
    models: models.map((m) => ({ arm: m.arm, seed: m.seed, weights: m.meta.weightsSha256, representations: m.meta.representationsHash })),
    arms: arms.map((a) => ({ arm: a.arm, seeds: a.seeds, persons: a.persons, csv: a.csv, relevance: a.relevance ?? null })),
    relevance: o.endpoint ? {
      model: o.endpointModel ?? null, task: taskInWords(o.task), figure,
    } : null,
  };
  writeAtomic(join(o.out, 'attention.json'), JSON.stringify(record, null, 1) + '\n');
  const written = arms.map((a) => a.csv).join(', ');
  const summary = o.endpoint
    ? `wrote ${written}, relevance.png, relevance.svg and attention.json to ${o.out}\n${lines.join('\n')}`
    : `wrote ${written} and attention.json to ${o.out}; no LLM endpoint configured (--endpoint URL), so no relevance ratings`;
  return { arms, summary };
}

// How relevant the concepts a model attends to are for its task, as judged by an LLM (the MedRep
// paper's Figure 4): one prompt per concept and task through the OpenAI-compatible client (its
// cache, rate limit and retries), the answer read as low / moderate / high, counted per arm.
import { ChatDescriber } from '../text/chatClient';
import { levelBars } from '../../figures/charts';

export const RELEVANCE_LEVELS = ['low', 'moderate', 'high'] as const;
export type RelevanceLevel = (typeof RELEVANCE_LEVELS)[number];

export interface RatedConcept {
  conceptId: number;
  name: string;
  domain: string;
}

/** The relevance question for one concept (in the style of the paper's prompt; the answer is one word). */
export function relevancePrompt(task: string, c: RatedConcept): string {
  return `A model predicts the following outcome from a patient's electronic health record: ${task}. `
    + `One of the concepts in the record is "${c.name}" (${c.domain}). How relevant is this concept to predicting that outcome? `
    + 'Answer with exactly one word: low, moderate or high.';
}

/** The level an answer names (its first level word), or null when it names none. */
export function parseRelevance(answer: string | null): RelevanceLevel | null {
  const m = answer ? /\b(low|moderate|high)\b/i.exec(answer) : null;
  return m ? (m[1].toLowerCase() as RelevanceLevel) : null;
}

export interface RelevanceOptions {
  endpoint: string;
  model?: string;
  apiKey?: string;
  cacheFile: string;
  log?: (line: string) => void;
}

/** Relevance of each concept for `task` (null where the endpoint gave no usable answer). */
export async function rateRelevance(task: string, concepts: RatedConcept[], o: RelevanceOptions): Promise<Map<number, RelevanceLevel | null>> {
  const client = new ChatDescriber({ endpoint: o.endpoint, cacheFile: o.cacheFile, log: o.log, ...(o.model ? { model: o.model } : {}), ...(o.apiKey ? { apiKey: o.apiKey } : {}) });
  const answers = await client.askAll(concepts.map((c) => ({ key: String(c.conceptId), prompt: relevancePrompt(task, c) })));
  return new Map(concepts.map((c) => [c.conceptId, parseRelevance(answers.get(String(c.conceptId)) ?? null)]));
}

export type RelevanceCounts = Record<RelevanceLevel | 'unanswered', number>;

export function countRelevance(levels: Iterable<RelevanceLevel | null>): RelevanceCounts {
  const out: RelevanceCounts = { low: 0, moderate: 0, high: 0, unanswered: 0 };
  for (const l of levels) out[l ?? 'unanswered']++;
  return out;
}

/** Bar colours of low, moderate, high: one blue, light to dark. */
export const LEVEL_COLORS: Record<RelevanceLevel, string> = { low: '#a6bddb', moderate: '#3690c0', high: '#023858' };

/** The Figure 4 chart as SVG: one group per arm (in the given order), in each the counts of low, moderate and high. */
export function relevanceChart(arms: { arm: string; counts: RelevanceCounts }[], task: string): Promise<string> {
  const rows = arms.flatMap((a) => RELEVANCE_LEVELS.map((level) => ({ arm: a.arm, level, n: a.counts[level] })));
  return levelBars(rows, { title: `Relevance of the attended concepts to: ${task}`, y: 'concepts', levels: [...RELEVANCE_LEVELS], colors: RELEVANCE_LEVELS.map((l) => LEVEL_COLORS[l]) }, arms.map((a) => a.arm));
}

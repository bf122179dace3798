// How relevant the concepts a model attends to are for its task, as judged by an LLM (the MedRep
// paper's Figure 4): one prompt per concept and task through the OpenAI-compatible client (its
// cache, rate limit and retries), the answer read as low / moderate / high, counted per arm.
import { ChatDescriber } from '../text/chatClient';
import { encodePng } from '../metrics/png';

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

/** Bar colours of low, moderate, high (the legend is written beside the figure). */
export const LEVEL_COLORS: Record<RelevanceLevel, [number, number, number]> = { low: [166, 189, 219], moderate: [54, 144, 192], high: [2, 56, 88] };

/**
 * Grouped bars: one group per arm (left to right in the given order), in each the counts of low,
 * moderate and high; a light grid line every 10 concepts and a frame. No text in the image.
 */
export function relevanceFigure(arms: RelevanceCounts[], opts: { width?: number; height?: number } = {}): Buffer {
  const width = opts.width ?? Math.max(320, 60 + arms.length * 110);
  const height = opts.height ?? 320;
  const px = new Uint8Array(width * height * 3).fill(255);
  const rect = (x0: number, y0: number, x1: number, y1: number, c: [number, number, number]) => {
    for (let y = Math.max(0, Math.round(y0)); y < Math.min(height, Math.round(y1)); y++) {
      for (let x = Math.max(0, Math.round(x0)); x < Math.min(width, Math.round(x1)); x++) px.set(c, (y * width + x) * 3);
    }
  };
  const margin = 30;
  const top = margin;
  const bottom = height - margin;
  const max = Math.max(10, ...arms.flatMap((a) => RELEVANCE_LEVELS.map((l) => a[l])));
  const yOf = (v: number) => bottom - ((bottom - top) * v) / max;
  for (let g = 10; g <= max; g += 10) rect(margin, yOf(g), width - margin, yOf(g) + 1, [225, 225, 225]);
  const groupWidth = (width - 2 * margin) / Math.max(1, arms.length);
  const bar = Math.min(28, (groupWidth - 20) / 3);
  arms.forEach((a, i) => {
    const x0 = margin + i * groupWidth + (groupWidth - 3 * bar) / 2;
    RELEVANCE_LEVELS.forEach((l, k) => rect(x0 + k * bar, yOf(a[l]), x0 + (k + 1) * bar - 2, bottom, LEVEL_COLORS[l]));
  });
  const black: [number, number, number] = [0, 0, 0];
  rect(margin, top, width - margin, top + 1, black);
  rect(margin, bottom, width - margin, bottom + 1, black);
  rect(margin, top, margin + 1, bottom + 1, black);
  rect(width - margin - 1, top, width - margin, bottom + 1, black);
  return encodePng(width, height, px);
}

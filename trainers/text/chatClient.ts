// Concept descriptions from an OpenAI-compatible chat endpoint (POST .../chat/completions), with
// the paper's approach of one prompt per domain. Answers are cached on disk (JSON lines keyed by
// a hash of model and prompt), so a rerun resumes where the last one stopped; requests are rate
// limited and retried on 429, 5xx, network errors and timeouts with exponential back-off
// (honouring Retry-After).
import * as fs from 'fs';
import * as path from 'path';
import { createHash } from 'crypto';

export type ConceptDomain = 'condition' | 'drug' | 'measurement' | 'procedure';

export const SYSTEM_PROMPT = 'You are a clinical terminology expert. Answer in plain text, without lists or headings.';

/** One prompt per domain, in the style of the MedRep paper's LLM descriptions. */
export const DOMAIN_PROMPTS: Record<ConceptDomain, (name: string, vocabulary: string) => string> = {
  condition: (n, v) => `Describe the medical condition "${n}" (${v}) in two or three sentences: what it is, its usual causes, and how it presents.`,
  drug: (n, v) => `Describe the drug "${n}" (${v}) in two or three sentences: its active ingredients, its drug class, and what it is used to treat.`,
  measurement: (n, v) => `Describe the clinical measurement "${n}" (${v}) in two or three sentences: what it measures, and what abnormally high or low values indicate.`,
  procedure: (n, v) => `Describe the medical procedure "${n}" (${v}) in two or three sentences: what it involves and why it is performed.`,
};

export interface ChatClientOptions {
  /** Base URL (…/v1) or the full …/chat/completions URL. */
  endpoint: string;
  model: string;
  apiKey?: string;
  cacheFile: string;
  requestsPerSecond: number;
  concurrency: number;
  maxRetries: number;
  timeoutMs: number;
  /** First back-off delay; doubles per attempt. */
  retryBaseMs: number;
  log?: (line: string) => void;
}

export const DEFAULT_CHAT: Omit<ChatClientOptions, 'endpoint' | 'cacheFile'> = {
  model: 'gpt-4o-mini', requestsPerSecond: 5, concurrency: 4, maxRetries: 4, timeoutMs: 60_000, retryBaseMs: 1_000,
};

export interface DescriptionRequest {
  key: string;
  domain: ConceptDomain;
  name: string;
  vocabulary: string;
}

export interface ChatStats {
  cached: number;
  requested: number;
  succeeded: number;
  failed: number;
  retries: number;
}

/** One prompt and the key its answer is returned under. */
export interface PromptRequest {
  key: string;
  prompt: string;
}

interface CacheLine { key: string; model: string; prompt_sha256: string; text: string }

export class ChatDescriber {
  private readonly o: ChatClientOptions;
  private readonly cache = new Map<string, string>();
  private nextStart = 0;
  readonly stats: ChatStats = { cached: 0, requested: 0, succeeded: 0, failed: 0, retries: 0 };

  constructor(options: Partial<ChatClientOptions> & Pick<ChatClientOptions, 'endpoint' | 'cacheFile'>) {
    this.o = { ...DEFAULT_CHAT, ...options };
    if (fs.existsSync(this.o.cacheFile)) {
      const content = fs.readFileSync(this.o.cacheFile, 'utf8');
      let skipped = 0;
      for (const line of content.split('\n')) {
        if (!line.trim()) continue;
        try {
          const c = JSON.parse(line) as CacheLine;
          this.cache.set(c.prompt_sha256, c.text);
        } catch {
          skipped++; // a run killed mid-write leaves a partial line; that prompt is asked again
        }
      }
      if (skipped) this.o.log?.(`[text] ${this.o.cacheFile}: ${skipped} incomplete cache lines skipped`);
      // terminate a partial last line so the next answer starts on its own line
      if (content.length > 0 && !content.endsWith('\n')) fs.appendFileSync(this.o.cacheFile, '\n');
    } else {
      fs.mkdirSync(path.dirname(this.o.cacheFile), { recursive: true });
    }
  }

  private url(): string {
    const e = this.o.endpoint.replace(/\/+$/, '');
    return e.endsWith('/chat/completions') ? e : `${e}/chat/completions`;
  }

  promptFor(r: DescriptionRequest): string { return DOMAIN_PROMPTS[r.domain](r.name, r.vocabulary); }

  private promptHash(prompt: string): string {
    return createHash('sha256').update(`${this.o.model}\u0000${SYSTEM_PROMPT}\u0000${prompt}`).digest('hex');
  }

  /** Descriptions for every request (null where the endpoint failed after retries). */
  async describeAll(requests: DescriptionRequest[]): Promise<Map<string, string | null>> {
    return this.askAll(requests.map((r) => ({ key: r.key, prompt: this.promptFor(r) })));
  }

  /** Answers to any prompts, through the same cache, rate limit and retries (null where the endpoint failed). */
  async askAll(requests: PromptRequest[]): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>();
    const todo: PromptRequest[] = [];
    for (const r of requests) {
      const hit = this.cache.get(this.promptHash(r.prompt));
      if (hit !== undefined) { out.set(r.key, hit); this.stats.cached++; } else todo.push(r);
    }
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < todo.length) {
        const r = todo[next++];
        out.set(r.key, await this.describe(r));
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.o.concurrency) }, worker));
    this.o.log?.(`[text] endpoint: ${this.stats.cached} cached, ${this.stats.succeeded} new, ${this.stats.failed} failed, ${this.stats.retries} retries`);
    return out;
  }

  private async waitTurn(): Promise<void> {
    const gap = 1000 / this.o.requestsPerSecond;
    const now = Date.now();
    const at = Math.max(now, this.nextStart);
    this.nextStart = at + gap;
    if (at > now) await sleep(at - now);
  }

  private async describe(r: PromptRequest): Promise<string | null> {
    const prompt = r.prompt;
    const hash = this.promptHash(prompt);
    this.stats.requested++;
    for (let attempt = 0; ; attempt++) {
      await this.waitTurn();
      let retryAfterMs: number | null = null;
      let reason: string;
      try {
        const res = await fetch(this.url(), {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(this.o.apiKey ? { authorization: `Bearer ${this.o.apiKey}` } : {}) },
          body: JSON.stringify({ model: this.o.model, temperature: 0, messages: [{ role: 'system', content: SYSTEM_PROMPT }, { role: 'user', content: prompt }] }),
          signal: AbortSignal.timeout(this.o.timeoutMs),
        });
        if (res.ok) {
          const body = (await res.json()) as { choices?: Array<{ message?: { content?: string } }> };
          const text = body.choices?.[0]?.message?.content?.trim();
          if (!text) throw new Error('response has no choices[0].message.content');
          const line: CacheLine = { key: r.key, model: this.o.model, prompt_sha256: hash, text };
          fs.appendFileSync(this.o.cacheFile, JSON.stringify(line) + '\n');
          this.cache.set(hash, text);
          this.stats.succeeded++;
          return text;
        }
        reason = `HTTP ${res.status}`;
        await res.body?.cancel();
        const ra = res.headers.get('retry-after');
        if (ra !== null && Number.isFinite(Number(ra))) retryAfterMs = Number(ra) * 1000;
        if (res.status !== 429 && res.status < 500) { this.fail(r, reason); return null; }
      } catch (e) {
        reason = (e as Error).name === 'TimeoutError' ? `timeout after ${this.o.timeoutMs} ms` : (e as Error).message;
      }
      if (attempt >= this.o.maxRetries) { this.fail(r, `${reason} after ${attempt + 1} attempts`); return null; }
      this.stats.retries++;
      await sleep(retryAfterMs ?? this.o.retryBaseMs * 2 ** attempt);
    }
  }

  private fail(r: PromptRequest, reason: string): void {
    this.stats.failed++;
    this.o.log?.(`[text] endpoint failed for ${r.key}: ${reason}`);
  }
}

function sleep(ms: number): Promise<void> { return new Promise((res) => setTimeout(res, ms)); }

// Concept text (issue 5 item 2): one description per graph node. Sources, in order: a
// user-supplied descriptions file (concept_id, description[, decile]); an OpenAI-compatible chat
// endpoint; an offline template from the vocabulary (name, domain, vocabulary, class, synonyms,
// parents and related concepts' names). Decile nodes read "<name> (kth decile)" followed by
// their concept's description. The source of every description is recorded.
import * as fs from 'fs';
import type { ConceptGraph } from '../graph/conceptGraph';
import { DOMAIN_NAMES } from '../graph/conceptGraph';
import { parseId, requireVocabFile, streamConcepts, streamRelationships, streamSynonyms, streamVocabTable } from '../graph/vocabularyFiles';
import { ChatDescriber, ChatClientOptions, ConceptDomain, DescriptionRequest } from './chatClient';

export type TextSource = 'file' | 'endpoint' | 'template';

export interface ConceptText {
  /** Per graph node. */
  texts: string[];
  sources: TextSource[];
  counts: Record<TextSource, number>;
}

interface ConceptInfo { name: string; vocabulary: string; cls: string }

export function ordinal(k: number): string {
  const s = k % 100 >= 11 && k % 100 <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[k % 10] ?? 'th';
  return `${k}${s}`;
}

/** Reads a descriptions file: CSV or TSV with columns concept_id, description and optionally decile. */
export async function readDescriptionsFile(file: string): Promise<Map<string, string>> {
  if (!fs.existsSync(file)) throw new Error(`descriptions file ${file} does not exist`);
  const header = fs.readFileSync(file, 'utf8').split('\n', 1)[0].toLowerCase();
  const format = header.includes('\t') ? 'tsv' : 'csv';
  const withDecile = /(^|[,\t])decile([,\t]|$)/.test(header.trim());
  const out = new Map<string, string>();
  await streamVocabTable({ path: file, format }, withDecile ? ['concept_id', 'description', 'decile'] : ['concept_id', 'description'], (r, where) => {
    const id = parseId(r.concept_id, where, 'concept_id');
    if (r.description === null) throw new Error(`${where}: column description is empty`);
    const d = withDecile && r.decile !== null ? Number(r.decile) : null;
    if (d !== null && !(Number.isInteger(d) && d >= 0 && d <= 9)) throw new Error(`${where}: column decile is not 0..9: '${r.decile}'`);
    out.set(textKey(id, d), r.description);
  });
  return out;
}

export function textKey(conceptId: number, decile: number | null): string {
  return decile === null || decile < 0 ? `${conceptId}` : `${conceptId}#${decile}`;
}

/** Offline template of a concept from its vocabulary entry and neighbourhood. */
export function templateDescription(info: ConceptInfo, domain: string, synonyms: string[], parents: string[], related: Array<[string, string]>): string {
  const parts = [`${info.name}.`, `A ${domain} concept in ${info.vocabulary}${info.cls ? ` (${info.cls})` : ''}.`];
  if (synonyms.length) parts.push(`Also known as ${synonyms.join('; ')}.`);
  if (parents.length) parts.push(`A kind of ${parents.join('; ')}.`);
  if (related.length) parts.push(...related.map(([rel, name]) => `${rel}: ${name}.`));
  return parts.join(' ');
}

export interface ConceptTextOptions {
  descriptionsFile?: string | null;
  endpoint?: (Partial<ChatClientOptions> & Pick<ChatClientOptions, 'endpoint' | 'cacheFile'>) | null;
  /** Related names per concept in a template. */
  maxRelated?: number;
  log?: (line: string) => void;
}

/** Builds the description of every node of the graph. */
export async function buildConceptText(vocabDir: string, graph: ConceptGraph, o: ConceptTextOptions = {}): Promise<ConceptText> {
  const log = o.log ?? (() => {});
  const maxRelated = o.maxRelated ?? 6;
  const inScope = new Set<number>();
  for (let n = 0; n < graph.numConceptNodes; n++) inScope.add(graph.conceptIds[n]);

  // names of every concept (related concepts may lie outside the scope)
  const info = new Map<number, ConceptInfo>();
  await streamConcepts(vocabDir, (c) => info.set(c.concept_id, { name: c.concept_name, vocabulary: c.vocabulary_id, cls: c.concept_class_id }));
  const synonyms = new Map<number, string[]>();
  await streamSynonyms(vocabDir, (id, s) => {
    if (!inScope.has(id)) return;
    const l = synonyms.get(id) ?? [];
    const name = info.get(id)?.name;
    if (l.length < 3 && s !== name && !l.includes(s)) l.push(s);
    synonyms.set(id, l);
  });
  const parents = new Map<number, number[]>();
  const related = new Map<number, Array<[string, number]>>();
  requireVocabFile(vocabDir, 'concept_relationship');
  await streamRelationships(vocabDir, (a, b, rel) => {
    if (!inScope.has(a) || a === b || !info.has(b)) return;
    if (rel === 'Is a') {
      const l = parents.get(a) ?? [];
      if (l.length < 3 && !l.includes(b)) l.push(b);
      parents.set(a, l);
    } else if (rel !== 'Maps to' && rel !== 'Mapped from') {
      const l = related.get(a) ?? [];
      if (l.length < maxRelated && !l.some(([, x]) => x === b)) l.push([rel, b]);
      related.set(a, l);
    }
  });

  const base = new Map<number, { text: string; source: TextSource }>();
  const fileTexts = o.descriptionsFile ? await readDescriptionsFile(o.descriptionsFile) : new Map<string, string>();
  const requests: DescriptionRequest[] = [];
  for (let n = 0; n < graph.numConceptNodes; n++) {
    const id = graph.conceptIds[n];
    const t = fileTexts.get(textKey(id, null));
    if (t !== undefined) base.set(id, { text: t, source: 'file' });
    else if (o.endpoint) {
      const i = info.get(id)!;
      requests.push({ key: textKey(id, null), domain: DOMAIN_NAMES[graph.domains[n]] as ConceptDomain, name: i.name, vocabulary: i.vocabulary });
    }
  }
  if (o.endpoint && requests.length) {
    const answers = await new ChatDescriber({ ...o.endpoint, log }).describeAll(requests);
    for (const r of requests) {
      const a = answers.get(r.key);
      if (a) base.set(Number(r.key), { text: a, source: 'endpoint' });
    }
  }
  for (let n = 0; n < graph.numConceptNodes; n++) {
    const id = graph.conceptIds[n];
    if (base.has(id)) continue;
    const i = info.get(id)!;
    base.set(id, {
      text: templateDescription(i, DOMAIN_NAMES[graph.domains[n]], synonyms.get(id) ?? [],
        (parents.get(id) ?? []).map((p) => info.get(p)!.name),
        (related.get(id) ?? []).map(([rel, b]) => [rel, info.get(b)!.name] as [string, string])),
      source: 'template',
    });
  }

  const texts: string[] = [];
  const sources: TextSource[] = [];
  const counts: Record<TextSource, number> = { file: 0, endpoint: 0, template: 0 };
  for (let n = 0; n < graph.numNodes; n++) {
    const id = graph.conceptIds[n];
    const d = graph.deciles[n];
    let text: string;
    let source: TextSource;
    const own = d >= 0 ? fileTexts.get(textKey(id, d)) : undefined;
    if (own !== undefined) { text = own; source = 'file'; } else if (d >= 0) {
      const b = base.get(id)!;
      text = `${info.get(id)!.name} (${ordinal(d + 1)} decile). ${b.text}`;
      source = b.source;
    } else ({ text, source } = base.get(id)!);
    texts.push(text);
    sources.push(source);
    counts[source]++;
  }
  log(`[text] ${graph.numNodes} descriptions: ${counts.file} from file, ${counts.endpoint} from endpoint, ${counts.template} from templates`);
  return { texts, sources, counts };
}

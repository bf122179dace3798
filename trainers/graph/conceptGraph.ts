// The MedRep concept graph: nodes are the concepts of the condition, drug,
// measurement and procedure domains plus one node per decile of every binned measurement;
// edges are CONCEPT_RELATIONSHIP pairs between nodes (every relationship type, symmetric, no
// self links) plus base measurement <-> decile edges; every edge touching a node with more than
// 100 links is dropped (the node stays). Built streaming: concept ids live in one sorted
// Float64Array, links as packed pair keys that are compacted (sorted, deduplicated) whenever the
// buffer fills, so memory is bounded by the number of distinct links, not of relationship rows.
import type { DecileArtifact } from '../../transforms/deciles';
import { GrowableFloat64 } from '../../common/growable';
import { streamConcepts, streamRelationships } from '../../sources/vocabularyFiles';

/** MedRep's domain ids. */
export const GRAPH_DOMAINS: Record<string, number> = { Condition: 1, Drug: 2, Measurement: 3, Procedure: 4 };
export const DOMAIN_NAMES = ['', 'condition', 'drug', 'measurement', 'procedure'];
export const MAX_LINKS = 100;
const PAIR_BASE = 2 ** 26; // node indexes stay below this (67 million)

export interface GraphBuildOptions {
  /** Decile artifact: every concept with a group gets decile nodes 0..9. */
  deciles?: DecileArtifact | null;
  /** Decile nodes 0..9 for every measurement concept of the vocabulary (with or without an artifact). */
  allMeasurementDeciles?: boolean;
  /** Edges touching a node with more links than this are dropped. Default 100. */
  maxLinks?: number;
  /** Pair keys held before a compaction; bounds memory. Default 8 million (64 MB). */
  compactEvery?: number;
  log?: (line: string) => void;
}

export interface GraphStats {
  conceptRows: number;
  conceptNodes: number;
  decileNodes: number;
  decileConceptsNotInScope: number;
  relationshipRows: number;
  relationshipRowsInvalid: number;
  relationshipRowsBetweenNodes: number;
  distinctLinks: number;
  hubNodes: number;
  droppedLinks: number;
  keptLinks: number;
}

export class ConceptGraph {
  constructor(
    /** concept_id of every node: base concepts first (ascending), then decile nodes. */
    readonly conceptIds: Float64Array,
    /** decile of every node, -1 for a base concept. */
    readonly deciles: Int8Array,
    /** MedRep domain id of every node (1..4). */
    readonly domains: Int8Array,
    readonly numConceptNodes: number,
    /** CSR adjacency, symmetric: neighbours of n are colIdx[rowPtr[n] .. rowPtr[n+1]). */
    readonly rowPtr: Int32Array,
    readonly colIdx: Int32Array,
    readonly stats: GraphStats,
  ) {}

  get numNodes(): number { return this.conceptIds.length; }
  get numEdges(): number { return this.colIdx.length / 2; }
  degree(n: number): number { return this.rowPtr[n + 1] - this.rowPtr[n]; }
  neighbours(n: number): Int32Array { return this.colIdx.subarray(this.rowPtr[n], this.rowPtr[n + 1]); }

  /** Node index of a (concept, decile) token, or -1. */
  indexOf(conceptId: number, decile: number | null = null): number {
    const base = lowerBound(this.conceptIds, conceptId, 0, this.numConceptNodes);
    if (base >= this.numConceptNodes || this.conceptIds[base] !== conceptId) return -1;
    if (decile === null || decile < 0) return base;
    const d = lowerBound(this.conceptIds, conceptId, this.numConceptNodes, this.conceptIds.length);
    if (d >= this.conceptIds.length || this.conceptIds[d] !== conceptId) return -1;
    return d + decile;
  }
}

function lowerBound(a: Float64Array, v: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Builds the graph from a vocabulary folder (Athena, CDM CSV or Parquet), streaming. */
export async function buildConceptGraph(vocabDir: string, opts: GraphBuildOptions = {}): Promise<ConceptGraph> {
  const log = opts.log ?? (() => {});
  const maxLinks = opts.maxLinks ?? MAX_LINKS;
  const scope = await conceptsInScope(vocabDir);
  const nodes = graphNodes(scope, opts);
  log(`[graph] ${scope.conceptRows} concept rows, ${scope.baseIds.length} concept nodes, ${nodes.decileConcepts.length * 10} decile nodes`);
  const links = await distinctLinks(vocabDir, scope.baseIds, nodes.decileConcepts, opts.compactEvery ?? 8_000_000);
  log(`[graph] ${links.rel.rows} relationship rows (${links.rel.invalid} invalid), ${links.between} between nodes, ${links.keys.length} distinct links`);
  const csr = symmetricCsr(links.keys, nodes.conceptIds.length, maxLinks);
  const stats: GraphStats = {
    conceptRows: scope.conceptRows, conceptNodes: scope.baseIds.length, decileNodes: nodes.decileConcepts.length * 10,
    decileConceptsNotInScope: nodes.decileNotInScope, relationshipRows: links.rel.rows, relationshipRowsInvalid: links.rel.invalid,
    relationshipRowsBetweenNodes: links.between, distinctLinks: links.keys.length, hubNodes: csr.hubs,
    droppedLinks: links.keys.length - csr.keptLinks, keptLinks: csr.keptLinks,
  };
  log(`[graph] ${csr.hubs} nodes with more than ${maxLinks} links; ${stats.droppedLinks} links dropped, ${csr.keptLinks} kept`);
  return new ConceptGraph(nodes.conceptIds, nodes.deciles, nodes.domains, scope.baseIds.length, csr.rowPtr, csr.colIdx, stats);
}

/** The concepts of the graph's domains, ascending by id, with their domains. */
async function conceptsInScope(vocabDir: string): Promise<{ conceptRows: number; baseIds: Float64Array; domains: Int8Array }> {
  // packed (id * 8 + domain) so one native sort orders both
  const packed = new GrowableFloat64();
  const conceptRows = await streamConcepts(vocabDir, (c) => {
    const dom = GRAPH_DOMAINS[c.domain_id];
    if (dom === undefined) return;
    if (c.concept_id < 0 || c.concept_id * 8 > Number.MAX_SAFE_INTEGER) throw new Error(`concept_id ${c.concept_id} out of range`);
    packed.push(c.concept_id * 8 + dom);
  });
  packed.sortUnique();
  const pv = packed.view();
  const numConcepts = pv.length;
  for (let i = 1; i < numConcepts; i++) {
    if (Math.floor(pv[i] / 8) === Math.floor(pv[i - 1] / 8)) throw new Error(`concept ${Math.floor(pv[i] / 8)} appears twice with different domains`);
  }
  const baseIds = new Float64Array(numConcepts);
  const domains = new Int8Array(numConcepts);
  for (let i = 0; i < numConcepts; i++) { baseIds[i] = Math.floor(pv[i] / 8); domains[i] = pv[i] - baseIds[i] * 8; }
  return { conceptRows, baseIds, domains };
}

/** Concept nodes first, then ten decile nodes for every binned measurement concept in scope. */
function graphNodes(scope: { baseIds: Float64Array; domains: Int8Array }, opts: GraphBuildOptions) {
  const { baseIds } = scope;
  const numConcepts = baseIds.length;
  const decileConcepts: number[] = [];
  let decileNotInScope = 0;
  if (opts.deciles) {
    const seen = new Set<number>();
    for (const g of opts.deciles.groups) {
      if (seen.has(g.concept_id)) continue;
      seen.add(g.concept_id);
      const i = lowerBound(baseIds, g.concept_id, 0, numConcepts);
      if (i < numConcepts && baseIds[i] === g.concept_id) decileConcepts.push(g.concept_id);
      else decileNotInScope++;
    }
  }
  if (opts.allMeasurementDeciles) {
    const have = new Set(decileConcepts);
    for (let i = 0; i < numConcepts; i++) if (scope.domains[i] === GRAPH_DOMAINS.Measurement && !have.has(baseIds[i])) decileConcepts.push(baseIds[i]);
  }
  decileConcepts.sort((a, b) => a - b);
  const numNodes = numConcepts + decileConcepts.length * 10;
  if (numNodes >= PAIR_BASE) throw new Error(`graph of ${numNodes} nodes exceeds the supported ${PAIR_BASE}`);
  const conceptIds = new Float64Array(numNodes);
  const deciles = new Int8Array(numNodes).fill(-1);
  const domains = new Int8Array(numNodes);
  conceptIds.set(baseIds);
  domains.set(scope.domains);
  decileConcepts.forEach((c, k) => {
    for (let d = 0; d < 10; d++) {
      const n = numConcepts + k * 10 + d;
      conceptIds[n] = c;
      deciles[n] = d;
      domains[n] = GRAPH_DOMAINS.Measurement;
    }
  });
  return { conceptIds, deciles, domains, decileConcepts, decileNotInScope };
}

/**
 * Links between nodes as sorted distinct packed (lo, hi) keys: relationship rows between two
 * concepts in scope, and each decile node to its concept; compacted whenever the buffer fills.
 */
async function distinctLinks(vocabDir: string, baseIds: Float64Array, decileConcepts: number[], compactEvery: number) {
  const numConcepts = baseIds.length;
  const keys = new GrowableFloat64(1 << 20);
  let between = 0;
  let compactAt = compactEvery;
  const rel = await streamRelationships(vocabDir, (id1, id2) => {
    if (id1 === id2) return;
    const a = lowerBound(baseIds, id1, 0, numConcepts);
    if (a >= numConcepts || baseIds[a] !== id1) return;
    const b = lowerBound(baseIds, id2, 0, numConcepts);
    if (b >= numConcepts || baseIds[b] !== id2) return;
    between++;
    keys.push(a < b ? a * PAIR_BASE + b : b * PAIR_BASE + a);
    if (keys.length >= compactAt) {
      keys.sortUnique();
      compactAt = Math.max(compactEvery, keys.length * 2);
    }
  });
  decileConcepts.forEach((c, k) => {
    const base = lowerBound(baseIds, c, 0, numConcepts);
    for (let d = 0; d < 10; d++) keys.push(base * PAIR_BASE + numConcepts + k * 10 + d);
  });
  keys.sortUnique();
  return { keys: keys.view(), rel, between };
}

/** The >maxLinks rule (a hub node loses all its links), then a symmetric CSR of what is kept. */
function symmetricCsr(links: Float64Array, numNodes: number, maxLinks: number) {
  const deg = new Int32Array(numNodes);
  for (let i = 0; i < links.length; i++) {
    const lo = Math.floor(links[i] / PAIR_BASE);
    deg[lo]++;
    deg[links[i] - lo * PAIR_BASE]++;
  }
  let hubs = 0;
  const hub = new Uint8Array(numNodes);
  for (let n = 0; n < numNodes; n++) if (deg[n] > maxLinks) { hub[n] = 1; hubs++; }
  const kept = new Int32Array(numNodes);
  let keptLinks = 0;
  for (let i = 0; i < links.length; i++) {
    const lo = Math.floor(links[i] / PAIR_BASE);
    const hi = links[i] - lo * PAIR_BASE;
    if (hub[lo] || hub[hi]) continue;
    kept[lo]++;
    kept[hi]++;
    keptLinks++;
  }
  const rowPtr = new Int32Array(numNodes + 1);
  for (let n = 0; n < numNodes; n++) rowPtr[n + 1] = rowPtr[n] + kept[n];
  const colIdx = new Int32Array(rowPtr[numNodes]);
  const fill = rowPtr.slice(0, numNodes);
  // keys are sorted by (lo, hi), so each row's neighbours come out ascending after two passes
  for (let i = 0; i < links.length; i++) {
    const lo = Math.floor(links[i] / PAIR_BASE);
    const hi = links[i] - lo * PAIR_BASE;
    if (hub[lo] || hub[hi]) continue;
    colIdx[fill[hi]++] = lo;
  }
  for (let i = 0; i < links.length; i++) {
    const lo = Math.floor(links[i] / PAIR_BASE);
    const hi = links[i] - lo * PAIR_BASE;
    if (hub[lo] || hub[hi]) continue;
    colIdx[fill[lo]++] = hi;
  }
  return { rowPtr, colIdx, hubs, keptLinks };
}

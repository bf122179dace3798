// A byte-pair-encoding tokenizer trained on the concept descriptions. Words are
// lower-cased runs of letters/digits or single punctuation marks; BPE merges are learned over
// the word counts; a word's pieces after the first carry the "##" prefix, as in WordPiece, so
// a piece at the start of a word and inside it are different tokens.

export const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;
export const PAD = 0, UNK = 1, CLS = 2, SEP = 3, MASK = 4;

export function preTokenize(text: string): string[] {
  return text.toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '').match(/[a-z0-9]+|[^\sa-z0-9]/g) ?? [];
}

export interface TokenizerJSON {
  kind: 'medrep.bpe';
  merges: Array<[string, string]>;
  vocab: string[];
}

export class BpeTokenizer {
  private readonly ids = new Map<string, number>();
  private readonly rank = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();

  constructor(readonly vocab: string[], readonly merges: Array<[string, string]>) {
    vocab.forEach((t, i) => this.ids.set(t, i));
    merges.forEach(([a, b], i) => this.rank.set(`${a} ${b}`, i));
    SPECIAL_TOKENS.forEach((t, i) => { if (vocab[i] !== t) throw new Error(`tokenizer vocabulary must start with ${SPECIAL_TOKENS.join(' ')}`); });
  }

  get size(): number { return this.vocab.length; }

  /** Learns merges until the vocabulary has vocabSize entries (or no pair occurs twice). */
  static train(texts: Iterable<string>, vocabSize: number): BpeTokenizer {
    const wordCounts = new Map<string, number>();
    for (const t of texts) for (const w of preTokenize(t)) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
    // words as symbol arrays, in a fixed order so training is deterministic
    const words = [...wordCounts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const symbols = words.map(([w]) => [...w].map((ch, i) => (i === 0 ? ch : `##${ch}`)));
    const counts = words.map(([, c]) => c);
    const vocabSet = new Set<string>();
    for (const s of symbols) for (const x of s) vocabSet.add(x);
    const base = [...vocabSet].sort();
    const merges: Array<[string, string]> = [];
    const target = vocabSize - SPECIAL_TOKENS.length;
    let size = base.length;
    while (size < target) {
      const pairs = new Map<string, number>();
      for (let w = 0; w < symbols.length; w++) {
        const s = symbols[w];
        for (let i = 0; i + 1 < s.length; i++) {
          const k = `${s[i]} ${s[i + 1]}`;
          pairs.set(k, (pairs.get(k) ?? 0) + counts[w]);
        }
      }
      let bestKey = '';
      let bestCount = 1;
      for (const [k, c] of pairs) if (c > bestCount || (c === bestCount && bestKey !== '' && k < bestKey)) { bestKey = k; bestCount = c; }
      if (bestKey === '') break;
      const [a, b] = bestKey.split(' ');
      merges.push([a, b]);
      const merged = a + b.replace(/^##/, '');
      for (const s of symbols) {
        for (let i = 0; i + 1 < s.length; i++) if (s[i] === a && s[i + 1] === b) s.splice(i, 2, merged);
      }
      size++;
    }
    const learned = merges.map(([a, b]) => a + b.replace(/^##/, ''));
    const vocab = [...SPECIAL_TOKENS, ...base, ...learned.filter((t, i) => !vocabSet.has(t) && learned.indexOf(t) === i)];
    return new BpeTokenizer(vocab, merges);
  }

  private encodeWord(word: string): number[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    let s = [...word].map((ch, i) => (i === 0 ? ch : `##${ch}`));
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < s.length; i++) {
        const r = this.rank.get(`${s[i]} ${s[i + 1]}`);
        if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
      }
      if (best < 0) break;
      s = [...s.slice(0, best), s[best] + s[best + 1].replace(/^##/, ''), ...s.slice(best + 2)];
    }
    const ids = s.map((p) => this.ids.get(p) ?? UNK);
    if (this.cache.size < 100_000) this.cache.set(word, ids);
    return ids;
  }

  /** [CLS] pieces... [SEP], truncated to maxLen (keeping [SEP]). */
  encode(text: string, maxLen: number): number[] {
    const out = [CLS];
    for (const w of preTokenize(text)) {
      for (const id of this.encodeWord(w)) {
        if (out.length >= maxLen - 1) break;
        out.push(id);
      }
      if (out.length >= maxLen - 1) break;
    }
    out.push(SEP);
    return out;
  }

  /** Pieces back to text ("##" pieces join the previous one). */
  decode(ids: number[]): string {
    let s = '';
    for (const id of ids) {
      if (id < SPECIAL_TOKENS.length) continue;
      const t = this.vocab[id];
      s += t.startsWith('##') ? t.slice(2) : (s ? ' ' : '') + t;
    }
    return s;
  }

  toJSON(): TokenizerJSON { return { kind: 'medrep.bpe', merges: this.merges, vocab: this.vocab }; }
  static fromJSON(j: TokenizerJSON): BpeTokenizer { return new BpeTokenizer(j.vocab, j.merges); }
}

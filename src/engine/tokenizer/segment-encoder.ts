/**
 * Encoding a rendered chat piece by piece, each piece remembered, so a conversation that grows by
 * a turn costs the encoding of that turn, not of the whole conversation again.
 *
 * A Hugging Face tokenizer first cuts its input at every added token (`<|user|>`, `<|end|>`, ...)
 * and encodes the text between them one piece at a time; nothing joins across such a cut. So the
 * ids of a rendered chat are the ids of its segments, each an added token and the text up to the
 * next one, laid end to end. Encoding a 112K-token conversation whole took 0.7 s on the build
 * machine before every answer; its segments were all encoded at earlier turns.
 *
 * That holds while an added token only takes its own text: one that strips the whitespace before
 * it (`lstrip`), matches whole words only (`single_word`) or is matched after normalisation
 * (`normalized`) can reach into the segment before, so with any such token every text is encoded
 * whole. The first few texts of several segments (of up to 16K characters) are also encoded
 * whole and compared; one that differs turns the segments off for good, so a tokenizer that cuts
 * otherwise costs only time.
 *
 * A long segment (a pasted document) is also cut into pieces of about 64 characters at spaces,
 * where the tokenizer allows it (`cutsAtSpaces`: Llama's and Phi-3's). The library's BPE runs on
 * a whole segment as one word, in time that grows faster than its length, and each short piece
 * also finds the words it has seen before in the library's cache: a 189K-token document took
 * 4.5 s whole and 0.9 s in pieces on the build machine (`npm run bench:prompt-count`). The first
 * few segments cut so (of up to 16K characters) are compared with their whole encoding, as above.
 * Rule: `encode` returns exactly what encoding the whole text returns.
 */

interface AddedToken {
  content: string;
  lstrip?: boolean;
  single_word?: boolean;
  normalized?: boolean;
}

/** Segments remembered before the memory starts over (a few per message of every conversation). */
const REMEMBERED_SEGMENTS = 32768;
/** Texts of several segments checked against the whole encoding before the segments are trusted. */
const CHECKS = 3;
/** Characters at least in each piece of a segment cut at spaces (the last may be shorter). */
const PIECE_CHARS = 64;
/**
 * Texts (and segments cut at spaces) up to this long are the ones checked against their whole
 * encoding: a longer one would cost the whole encoding the cuts save, seconds for a document.
 */
const CHECK_MAX_CHARS = 16384;

const sameIds = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((id, i) => id === b[i]);

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function isAddedToken(t: unknown): t is AddedToken {
  return typeof t === 'object' && t !== null && typeof (t as AddedToken).content === 'string' && (t as AddedToken).content !== '';
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** '▁' after any other character: a token with it could join the two sides of a cut at a space. */
const JOINS_ACROSS_SPACE = /[^\u2581]\u2581/;

/**
 * Whether texts may be cut at a space and each side encoded on its own (tokenizer.json, parsed).
 * True for a SentencePiece-style BPE (Llama's, Phi-3's) whose normalizer prepends '▁' and turns
 * every space into '▁', with no pre-tokenizer, and none of whose tokens or merges has '▁' after
 * another character. Cut at a space that follows a character other than whitespace or '▁', the
 * side after, encoded alone, starts with the '▁' that stood for the space, and no merge can join
 * the side before (which ends in that other character) to it.
 */
export function cutsAtSpaces(tokenizerJson: unknown): boolean {
  if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model) || tokenizerJson.pre_tokenizer != null) return false;
  const norm = tokenizerJson.normalizer;
  const steps = isObject(norm) && norm.type === 'Sequence' && Array.isArray(norm.normalizers) ? norm.normalizers : [];
  const [prepend, replace] = steps as Array<Record<string, unknown> | undefined>;
  if (steps.length !== 2 || prepend?.type !== 'Prepend' || prepend.prepend !== '\u2581') return false;
  if (replace?.type !== 'Replace' || !isObject(replace.pattern) || replace.pattern.String !== ' ' || replace.content !== '\u2581') return false;
  const { type, vocab, merges, dropout, continuing_subword_prefix: prefix, end_of_word_suffix: suffix } = tokenizerJson.model;
  if (type !== 'BPE' || dropout != null || prefix != null || suffix != null || !isObject(vocab) || !Array.isArray(merges)) return false;
  if (Object.keys(vocab).some((t) => JOINS_ACROSS_SPACE.test(t))) return false;
  return merges.every((m: unknown) => {
    const joined = typeof m === 'string' ? m.replace(' ', '') : Array.isArray(m) ? m.join('') : null;
    return joined !== null && !JOINS_ACROSS_SPACE.test(joined);
  });
}

export class SegmentEncoder {
  /** Matches any added token, the longest at each place (as the tokenizer matches them); undefined: encode whole. */
  private cut: RegExp | undefined;
  private readonly segments = new Map<string, number[]>();
  private checksLeft = CHECKS;
  private pieceChecksLeft = CHECKS;

  /**
   * `addedTokens`: tokenizer.json's `added_tokens`; `encodeWhole`: the tokenizer's encoding without
   * `<s>`; `spaceCuts`: whether long segments may be cut at spaces (`cutsAtSpaces`).
   */
  constructor(
    addedTokens: readonly unknown[],
    private readonly encodeWhole: (text: string) => number[],
    private spaceCuts = false,
  ) {
    const tokens = addedTokens.filter(isAddedToken);
    if (tokens.length === 0 || tokens.length !== addedTokens.length) return;
    if (tokens.some((t) => t.lstrip === true || t.single_word === true || t.normalized === true)) return;
    const contents = [...new Set(tokens.map((t) => t.content))].sort((a, b) => b.length - a.length);
    this.cut = new RegExp(contents.map(escape).join('|'), 'g');
  }

  /** Whether texts are still encoded by segments (false once a check failed or for unsuitable tokens). */
  get bySegments(): boolean {
    return this.cut !== undefined;
  }

  /** Whether long segments are still cut at spaces (false once a check failed, or for other tokenizers). */
  get byPieces(): boolean {
    return this.spaceCuts && this.cut !== undefined;
  }

  encode(text: string): number[] {
    const cut = this.cut;
    if (!cut) return this.encodeWhole(text);
    // Where each segment starts, and where its text starts after the added token that opens it.
    const starts = [0];
    const texts = [0];
    for (const m of text.matchAll(cut)) {
      if (m.index > 0) starts.push(m.index);
      texts[starts.length - 1] = m.index + m[0].length;
    }
    if (starts.length === 1) return this.encodeSegment(text, texts[0]);
    const ids: number[] = [];
    for (let i = 0; i < starts.length; i++) {
      const segment = text.slice(starts[i], starts[i + 1] ?? text.length);
      let segmentIds = this.segments.get(segment);
      if (!segmentIds) {
        segmentIds = this.encodeSegment(segment, texts[i] - starts[i]);
        if (this.segments.size >= REMEMBERED_SEGMENTS) this.segments.clear();
        this.segments.set(segment, segmentIds);
      }
      for (const id of segmentIds) ids.push(id);
    }
    if (this.checksLeft > 0 && starts.length > 2 && text.length <= CHECK_MAX_CHARS) {
      this.checksLeft--;
      const whole = this.encodeWhole(text);
      if (!sameIds(whole, ids)) {
        this.cut = undefined;
        this.segments.clear();
        return whole;
      }
    }
    return ids;
  }

  /**
   * One segment's ids: cut into pieces at spaces where `spaceCuts` allows it, each encoded alone.
   * `from`: where its text starts (after the added token that opens it); the cuts come after it,
   * at a space that follows a character other than whitespace (which an added token that strips
   * the whitespace after it could take) or '▁', and not at its end.
   */
  private encodeSegment(segment: string, from: number): number[] {
    if (!this.spaceCuts || segment.length < 2 * PIECE_CHARS) return this.encodeWhole(segment);
    const ids: number[] = [];
    let start = 0;
    for (let at = Math.max(from + 1, PIECE_CHARS); ; at++) {
      at = segment.indexOf(' ', at);
      if (at < 0 || at >= segment.length - 1) break;
      const before = segment[at - 1];
      if (/\s/.test(before) || before === '\u2581') continue;
      for (const id of this.encodeWhole(segment.slice(start, at))) ids.push(id);
      start = at + 1;
      at = start + PIECE_CHARS - 1;
    }
    if (start === 0) return this.encodeWhole(segment);
    for (const id of this.encodeWhole(segment.slice(start))) ids.push(id);
    if (this.pieceChecksLeft > 0 && segment.length <= CHECK_MAX_CHARS) {
      this.pieceChecksLeft--;
      const whole = this.encodeWhole(segment);
      if (!sameIds(whole, ids)) {
        this.spaceCuts = false;
        return whole;
      }
    }
    return ids;
  }
}
